package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// onceEvents posts events that must be posted exactly once, such as "this
// migration is now enabled on this tenant". An EventRecorder cannot promise
// that across a restart: a pass that posted the event and stopped before
// its status write is repeated by the next process, and posts it again.
// Here the event's name is derived from the object's UID and a key naming
// what it reports, so the repeated create finds it there and does nothing.
type onceEvents struct {
	client    client.Client
	scheme    *runtime.Scheme
	clock     clock.PassiveClock
	component string
}

// Once posts the event unless an event with the same object and key was
// posted before (and has not expired: events live an hour by default).
func (e *onceEvents) Once(ctx context.Context, obj client.Object, key, eventType, reason, message string) error {
	gvk, err := apiutil.GVKForObject(obj, e.scheme)
	if err != nil {
		return err
	}
	now := metav1.Time{Time: e.clock.Now()}
	event := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: obj.GetNamespace(),
			Name:      fmt.Sprintf("%s.%s", obj.GetName(), hashOf(obj.GetUID(), key)),
		},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind,
			Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: obj.GetUID(), ResourceVersion: obj.GetResourceVersion(),
		},
		Reason: reason, Message: message, Type: eventType, Count: 1,
		FirstTimestamp: now, LastTimestamp: now,
		Source:              corev1.EventSource{Component: e.component},
		ReportingController: "identity.tenantops.io/" + e.component,
	}
	if err := e.client.Create(ctx, event); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}
