// Package controllers holds one reconciler per kind of the identity API.
//
// The permissions below are everything the operator needs, and they are the
// source of config/rbac/role.yaml (`make manifests`): it reads Secrets and
// ConfigMaps but never writes them, and writes only its own kinds.
package controllers

// +kubebuilder:rbac:groups=identity.tenantops.io,resources=tenants;platformmigrations;customdatabaseconnections;emailproviders;actions,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=identity.tenantops.io,resources=tenants/status;platformmigrations/status;customdatabaseconnections/status;emailproviders/status;actions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=identity.tenantops.io,resources=tenants/finalizers;platformmigrations/finalizers;customdatabaseconnections/finalizers;emailproviders/finalizers;actions/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets;configmaps,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="";events.k8s.io,resources=events,verbs=create;patch
