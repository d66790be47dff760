package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// The accessors below let the shared reconcile steps (conditions, pause,
// summary) work on every kind alike.

// GetConditions returns the Tenant's conditions.
func (in *Tenant) GetConditions() []metav1.Condition { return in.Status.Conditions }

// SetConditions replaces the Tenant's conditions.
func (in *Tenant) SetConditions(c []metav1.Condition) { in.Status.Conditions = c }

// SetObservedGeneration records the generation last reconciled successfully.
func (in *Tenant) SetObservedGeneration(g int64) { in.Status.ObservedGeneration = g }

// GetConditions returns the PlatformMigration's conditions.
func (in *PlatformMigration) GetConditions() []metav1.Condition { return in.Status.Conditions }

// SetConditions replaces the PlatformMigration's conditions.
func (in *PlatformMigration) SetConditions(c []metav1.Condition) { in.Status.Conditions = c }

// SetObservedGeneration records the generation last reconciled successfully.
func (in *PlatformMigration) SetObservedGeneration(g int64) { in.Status.ObservedGeneration = g }

// GetConditions returns the CustomDatabaseConnection's conditions.
func (in *CustomDatabaseConnection) GetConditions() []metav1.Condition {
	return in.Status.Conditions
}

// SetConditions replaces the CustomDatabaseConnection's conditions.
func (in *CustomDatabaseConnection) SetConditions(c []metav1.Condition) {
	in.Status.Conditions = c
}

// SetObservedGeneration records the generation last reconciled successfully.
func (in *CustomDatabaseConnection) SetObservedGeneration(g int64) {
	in.Status.ObservedGeneration = g
}

// GetConditions returns the EmailProvider's conditions.
func (in *EmailProvider) GetConditions() []metav1.Condition { return in.Status.Conditions }

// SetConditions replaces the EmailProvider's conditions.
func (in *EmailProvider) SetConditions(c []metav1.Condition) { in.Status.Conditions = c }

// SetObservedGeneration records the generation last reconciled successfully.
func (in *EmailProvider) SetObservedGeneration(g int64) { in.Status.ObservedGeneration = g }

// GetConditions returns the Action's conditions.
func (in *Action) GetConditions() []metav1.Condition { return in.Status.Conditions }

// SetConditions replaces the Action's conditions.
func (in *Action) SetConditions(c []metav1.Condition) { in.Status.Conditions = c }

// SetObservedGeneration records the generation last reconciled successfully.
func (in *Action) SetObservedGeneration(g int64) { in.Status.ObservedGeneration = g }
