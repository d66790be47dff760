// Package v1alpha1 holds the identity.tenantops.io/v1alpha1 API: the kinds a
// platform team applies from Git to keep its identity tenants in a declared
// state and to drive the platform's breaking-change migrations to completion.
//
// +kubebuilder:object:generate=true
// +groupName=identity.tenantops.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "identity.tenantops.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
