package v1alpha1

// Effective is the policy in force: Apply when the field is empty (an
// object stored before the field existed, or read without defaulting).
func (p ManagementPolicy) Effective() ManagementPolicy {
	if p == "" {
		return ManagementPolicyApply
	}
	return p
}

// Writes reports whether the operator may write the remote object under
// this policy: only under Apply. Plan and Observe read and report.
func (p ManagementPolicy) Writes() bool { return p.Effective() == ManagementPolicyApply }

// EffectiveManagementPolicy is the Tenant's policy in force (Apply when
// unset).
func (in *Tenant) EffectiveManagementPolicy() ManagementPolicy {
	return in.Spec.ManagementPolicy.Effective()
}

// Manages reports whether the operator writes this Tenant's remote tenant
// (its settings, flags, templates): only under Apply. A PlatformMigration
// must neither count a tenant it does not manage as enabled nor expect the
// date's PATCH to reach it.
func (in *Tenant) Manages() bool { return in.Spec.ManagementPolicy.Writes() }

// EffectiveManagementPolicy is the EmailProvider's policy in force (Apply
// when unset).
func (in *EmailProvider) EffectiveManagementPolicy() ManagementPolicy {
	return in.Spec.ManagementPolicy.Effective()
}

// EffectiveManagementPolicy is the CustomDatabaseConnection's policy in
// force (Apply when unset).
func (in *CustomDatabaseConnection) EffectiveManagementPolicy() ManagementPolicy {
	return in.Spec.ManagementPolicy.Effective()
}
