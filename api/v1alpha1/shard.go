package v1alpha1

// ShardLabel is the label that assigns an object to an operator instance
// when the fleet is split between several (the key Flux uses). A Tenant, its
// EmailProviders, CustomDatabaseConnections and Actions carry the same
// value; an object without it belongs to the default instance.
const ShardLabel = "sharding.fluxcd.io/key"

// DefaultShard is the name the operator instance run without a shard name
// claims objects under (status.shard).
const DefaultShard = "default"

// ConditionShardHandoff is True while the operator instance that now selects
// an object waits for the instance named in status.shard to let it go.
const ConditionShardHandoff = "ShardHandoff"

// The accessors below let the shared claim step (internal/shard) work on
// every namespaced kind alike.

// GetShard returns the instance that holds the Tenant.
func (in *Tenant) GetShard() string { return in.Status.Shard }

// SetShard records the instance that holds the Tenant.
func (in *Tenant) SetShard(s string) { in.Status.Shard = s }

// GetShard returns the instance that holds the EmailProvider.
func (in *EmailProvider) GetShard() string { return in.Status.Shard }

// SetShard records the instance that holds the EmailProvider.
func (in *EmailProvider) SetShard(s string) { in.Status.Shard = s }

// GetShard returns the instance that holds the CustomDatabaseConnection.
func (in *CustomDatabaseConnection) GetShard() string { return in.Status.Shard }

// SetShard records the instance that holds the CustomDatabaseConnection.
func (in *CustomDatabaseConnection) SetShard(s string) { in.Status.Shard = s }

// GetShard returns the instance that holds the Action.
func (in *Action) GetShard() string { return in.Status.Shard }

// SetShard records the instance that holds the Action.
func (in *Action) SetShard(s string) { in.Status.Shard = s }
