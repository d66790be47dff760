package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// Ownership of remote objects: the operator deletes only what it created,
// or adopted and then wrote; a deletion that cannot reach its tenant lets go
// within a bounded wait; one writer per remote object.

func TestAdoptedConnectionThePlatformRefusedIsLeftWithItsUsersOnDelete(t *testing.T) {
	f := newFixture(t)
	legacy := startLegacyStore(t, "service-pw-1")
	domain, creds := f.tenant("acme", "")
	// A plain database connection with a user of its own, made by hand
	// before the operator.
	existing, err := f.identityClient(domain, creds).CreateConnection(context.Background(),
		identity.ConnectionCreate{Name: "legacy-users", Strategy: identity.StrategyAuth0})
	f.g.Expect(err).NotTo(HaveOccurred())
	f.emu.CreateUser(domain, emulatortest.UserSeed{Connection: "legacy-users", Email: "dee@acme.example", Password: "Dee-platform-pw1"})

	// Adopted by name; the platform refuses to make it a custom database.
	f.apply(legacyConnection(legacy, "service-pw-1", "  deletionPolicy: Delete\n"))
	conn := legacyUsersObject()
	f.condition(conn, identityv1alpha1.ConditionStalled, metav1.ConditionTrue, identityv1alpha1.ReasonPlatformRefused)
	f.g.Expect(conn.Status.ConnectionID).To(Equal(existing.ID))
	f.g.Expect(conn.Status.Ownership).To(Equal(identityv1alpha1.OwnershipAdopted))
	f.g.Expect(conn.Status.ObservedGeneration).To(Equal(conn.Generation), "a stalled pass observed the generation: kstatus must not read it as in progress")

	conn.Namespace = f.ns
	f.g.Expect(k8s.Delete(context.Background(), conn)).To(Succeed())
	f.gone(conn)
	_, exists := f.emu.Connection(domain, "legacy-users")
	f.g.Expect(exists).To(BeTrue(), "deletionPolicy Delete deleted a connection the operator never wrote")
	f.g.Expect(f.emu.CountUsers(domain, "legacy-users")).To(Equal(1))
	f.g.Eventually(func() []string { return f.events("legacy-users") }, 10*time.Second, 100*time.Millisecond).
		Should(ContainElement(And(ContainSubstring("Normal RemoteObjectLeft: left connection legacy-users ("+existing.ID+") in place"),
			ContainSubstring("never wrote it"))))
}

func TestAdoptedConnectionTheOperatorWroteIsDeletedWithDeletionPolicyDelete(t *testing.T) {
	f := newFixture(t)
	legacy := startLegacyStore(t, "service-pw-1", ann)
	domain, creds := f.tenant("acme", "")
	_, err := f.identityClient(domain, creds).CreateConnection(context.Background(),
		identity.ConnectionCreate{Name: "legacy-users", Strategy: identity.StrategyAuth0})
	f.g.Expect(err).NotTo(HaveOccurred())

	f.apply(legacyConnection(legacy, "service-pw-1", "  deletionPolicy: Delete\n"))
	conn := legacyUsersObject()
	f.ready(conn)
	f.g.Expect(conn.Status.Ownership).To(Equal(identityv1alpha1.OwnershipAdoptedWritten))

	conn.Namespace = f.ns
	f.g.Expect(k8s.Delete(context.Background(), conn)).To(Succeed())
	f.gone(conn)
	_, exists := f.emu.Connection(domain, "legacy-users")
	f.g.Expect(exists).To(BeFalse())
}

func TestDeletionWithTheCredentialsSecretGoneFirstCompletesWithinTheBoundedWait(t *testing.T) {
	f := newFixture(t)
	smtp := emulatortest.StartSMTP(t, "")
	domain, _ := f.tenant("acme", "  deletionPolicy: Delete\n")
	f.apply(smtpProvider("acme", smtp, "pw") + "  deletionPolicy: Delete\n")
	provider := &identityv1alpha1.EmailProvider{ObjectMeta: metav1.ObjectMeta{Name: "acme-mail", Namespace: f.ns}}
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme", Namespace: f.ns}}
	f.ready(provider)
	f.ready(tenant)

	// What a namespace deletion does: everything goes at once, the Secret
	// (which holds no finalizer) first.
	ctx := context.Background()
	start := time.Now()
	f.g.Expect(k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "acme-credentials", Namespace: f.ns}})).To(Succeed())
	f.g.Expect(k8s.Delete(ctx, provider)).To(Succeed())
	f.g.Expect(k8s.Delete(ctx, tenant)).To(Succeed())

	f.gone(provider)
	f.gone(tenant)
	f.g.Expect(time.Since(start)).To(BeNumerically("<", deletionTimeout+10*time.Second))
	_, exists := f.emu.EmailProvider(domain)
	f.g.Expect(exists).To(BeTrue(), "nothing could reach the tenant: the provider is left")
	f.g.Expect(f.events("acme-mail")).To(ContainElement(And(
		ContainSubstring("Warning RemoteObjectLeft: left the email provider of Tenant acme in place"),
		ContainSubstring(`Secret "acme-credentials" not found`))))
	f.g.Expect(f.events("acme")).To(ContainElement(
		ContainSubstring("Warning RemoteObjectLeft: left the settings and flags Tenant acme manages on " + domain + " in place")))
}

func TestSecondTenantOnADomainIsRefusedAndTheFirstKeepsWorking(t *testing.T) {
	f := newFixture(t)
	domain, _ := f.tenant("acme", indent(`
settings: {friendlyName: Acme}
`))
	first := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}}
	f.ready(first)

	// Another application's credentials, another Tenant, the same domain.
	other := f.emu.MintClient(domain)
	f.apply(fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: acme-again-credentials}
stringData: {client_id: %q, client_secret: %q}
---
apiVersion: identity.tenantops.io/v1alpha1
kind: Tenant
metadata: {name: acme-again}
spec:
  domain: %s
  dialAddress: %s
  caBundleRef: {name: emulator-ca, key: ca.crt}
  credentialsSecretRef: {name: acme-again-credentials}
  settings: {friendlyName: Not Acme}
`, other.ClientID, other.ClientSecret, domain, f.emu.Addr()))
	second := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme-again"}}
	msg := f.condition(second, identityv1alpha1.ConditionStalled, metav1.ConditionTrue, identityv1alpha1.ReasonDuplicateTenant)
	f.g.Expect(msg).To(And(ContainSubstring("Tenant "+f.ns+"/acme "), ContainSubstring("already manages domain "+domain)))

	// The first is not disturbed: its settings stay, and its pooled client
	// (and token) is not swapped for the second's.
	f.emu.ResetRequests(domain)
	time.Sleep(3 * resync)
	f.ready(first)
	f.g.Expect(f.emu.Settings(domain)).To(HaveKeyWithValue("friendly_name", "Acme"))
	f.g.Expect(f.emu.Requests(domain).Count("POST", "/oauth/token")).To(BeZero(), "a new token was requested while the first Tenant's was valid")
	f.g.Expect(f.emu.Requests(domain).ManagementWrites()).To(BeZero())

	// Deleting the second leaves the first and its client alone.
	second.Namespace = f.ns
	f.g.Expect(k8s.Delete(context.Background(), second)).To(Succeed())
	f.gone(second)
	time.Sleep(2 * resync)
	f.ready(first)
	f.g.Expect(f.emu.Requests(domain).Count("POST", "/oauth/token")).To(BeZero())
}

func TestSecondConnectionOfOneNameIsRefused(t *testing.T) {
	f := newFixture(t)
	legacy := startLegacyStore(t, "service-pw-1", ann)
	domain, _ := f.tenant("acme", "")
	f.apply(legacyConnection(legacy, "service-pw-1", ""))
	first := legacyUsersObject()
	f.ready(first)
	id := first.Status.ConnectionID

	f.apply(`
apiVersion: identity.tenantops.io/v1alpha1
kind: CustomDatabaseConnection
metadata: {name: legacy-users-again}
spec:
  tenantRef: {name: acme}
  connectionName: legacy-users
  displayName: Someone else's accounts
  scripts:
    login: {inline: "function login(email, password, callback) { return callback(null, null); }"}
    getUser: {inline: "function getByEmail(email, callback) { return callback(null, null); }"}
  deletionPolicy: Delete
`)
	second := &identityv1alpha1.CustomDatabaseConnection{ObjectMeta: metav1.ObjectMeta{Name: "legacy-users-again"}}
	msg := f.condition(second, identityv1alpha1.ConditionStalled, metav1.ConditionTrue, identityv1alpha1.ReasonConnectionClaimed)
	f.g.Expect(msg).To(ContainSubstring(`CustomDatabaseConnection "legacy-users" already manages connection legacy-users`))
	f.g.Expect(second.Status.Ownership).To(BeEmpty())

	f.emu.ResetRequests(domain)
	time.Sleep(2 * resync)
	f.g.Expect(f.emu.Requests(domain).ManagementWrites()).To(BeZero(), "the second object wrote the connection")
	remote, _ := f.emu.Connection(domain, "legacy-users")
	f.g.Expect(remote["display_name"]).To(Equal("Acme accounts"))

	// Its deletion leaves the first one's connection alone.
	second.Namespace = f.ns
	f.g.Expect(k8s.Delete(context.Background(), second)).To(Succeed())
	f.gone(second)
	remote, exists := f.emu.Connection(domain, "legacy-users")
	f.g.Expect(exists).To(BeTrue())
	f.g.Expect(remote["id"]).To(Equal(id))
	f.ready(first)
}
