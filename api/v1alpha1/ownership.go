package v1alpha1

// RemoteOwnership is on what grounds the operator holds a remote object
// (a connection, a tenant's email provider), and so whether deletionPolicy
// Delete may delete it: only what the operator created, or adopted and then
// successfully wrote. An object it found and never wrote (the platform
// refused every update) belongs to whoever made it, and is left in place.
// +kubebuilder:validation:Enum=Created;Adopted;AdoptedWritten
type RemoteOwnership string

const (
	// OwnershipCreated: the operator made the remote object.
	OwnershipCreated RemoteOwnership = "Created"
	// OwnershipAdopted: the remote object existed, was found by its name,
	// and the operator has not written it yet.
	OwnershipAdopted RemoteOwnership = "Adopted"
	// OwnershipAdoptedWritten: the remote object existed, was found by its
	// name, and the operator has since written the declared state to it.
	OwnershipAdoptedWritten RemoteOwnership = "AdoptedWritten"
)

// Deletable reports whether deletionPolicy Delete may delete the remote
// object: the operator created it, or adopted it and wrote it.
func (o RemoteOwnership) Deletable() bool {
	return o == OwnershipCreated || o == OwnershipAdoptedWritten
}
