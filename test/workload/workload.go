// Package workload builds the objects the benchmarks and the reliability
// suite declare for one tenant (its credentials, the Tenant, an SMTP
// EmailProvider and a CustomDatabaseConnection with their Secrets), and
// counts what the emulator received for a set of tenants.
//
// It is shared by test/bench (commands that print figures) and
// test/reliability (tests), so that both measure the same workload.
package workload

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

// CABundle is the ConfigMap (and its key) holding the emulator's CA in every
// namespace of the workload.
const (
	CABundle    = "emulator-ca"
	CABundleKey = "ca.crt"
)

// LoginScript and GetUserScript are the connection's action scripts: they
// read the configuration (so a secret value travels in it) and find nobody.
const (
	LoginScript   = "function login(email, password, callback) {\n  if (!configuration.LEGACY_TOKEN) return callback(new Error('not configured'));\n  callback(null, null);\n}\n"
	GetUserScript = "function getByEmail(email, callback) {\n  callback(null, null);\n}\n"
)

// Secrets are the secret values of one tenant's objects. Tests make them
// distinctive to look for them where they must not be.
type Secrets struct {
	ClientID, ClientSecret string
	SMTPPassword           string
	// Configuration is the connection's configuration (key to value).
	Configuration map[string]string
}

// Tenant describes one tenant of the workload.
type Tenant struct {
	Namespace string
	// Name is the Tenant object's name; the other objects derive theirs.
	Name   string
	Domain string
	// DialAddress is the emulator's address.
	DialAddress string
	Secrets     Secrets
	// Flags are the tenant flags the Tenant declares (may be nil).
	Flags map[string]bool
	// CreatedAt, when set, is the tenant's creation date (before a
	// migration's grace period: not auto-enrolled).
	CreatedAt *metav1.Time
	// Labels go on the Tenant, its EmailProvider and its connection (a
	// shard label must be on all three).
	Labels map[string]string
}

// ProviderName, ConnectionName and ConnectionObject name a tenant's objects.
func (t Tenant) ProviderName() string   { return t.Name + "-mail" }
func (t Tenant) ConnectionName() string { return t.Name + "-users" }

// CABundleConfigMap is the emulator CA's ConfigMap for a namespace.
func CABundleConfigMap(namespace string, caPEM []byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: CABundle},
		Data:       map[string]string{CABundleKey: string(caPEM)},
	}
}

// TenantObjects are the credentials Secret and the Tenant.
func (t Tenant) TenantObjects() []client.Object {
	return []client.Object{
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: t.Name + "-credentials"},
			StringData: map[string]string{"client_id": t.Secrets.ClientID, "client_secret": t.Secrets.ClientSecret},
		},
		&identityv1alpha1.Tenant{
			ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: t.Name, Labels: t.Labels},
			Spec: identityv1alpha1.TenantSpec{
				Domain:               t.Domain,
				DialAddress:          t.DialAddress,
				CABundleRef:          &identityv1alpha1.KeySelector{Name: CABundle, Key: CABundleKey},
				CredentialsSecretRef: identityv1alpha1.LocalObjectReference{Name: t.Name + "-credentials"},
				Flags:                t.Flags,
				CreatedAt:            t.CreatedAt,
			},
		},
	}
}

// ProviderObjects are an SMTP EmailProvider and its password Secret. No
// mail is sent by the workload, so the relay address is never dialled.
func (t Tenant) ProviderObjects() []client.Object {
	return []client.Object{
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: t.Name + "-smtp"},
			StringData: map[string]string{"smtp_pass": t.Secrets.SMTPPassword},
		},
		&identityv1alpha1.EmailProvider{
			ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: t.ProviderName(), Labels: t.Labels},
			Spec: identityv1alpha1.EmailProviderSpec{
				TenantRef:            identityv1alpha1.TenantReference{Name: t.Name},
				Provider:             "smtp",
				DefaultFromAddress:   "no-reply@" + t.Domain,
				CredentialsSecretRef: &identityv1alpha1.LocalObjectReference{Name: t.Name + "-smtp"},
				SMTP:                 &identityv1alpha1.SMTPServer{Host: "127.0.0.1", Port: 2525, User: "mailer"},
			},
		},
	}
}

// ConnectionObjects are a CustomDatabaseConnection in import mode with
// inline scripts, and its configuration Secret.
func (t Tenant) ConnectionObjects() []client.Object {
	return []client.Object{
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: t.Name + "-legacy"},
			StringData: t.Secrets.Configuration,
		},
		&identityv1alpha1.CustomDatabaseConnection{
			ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: t.ConnectionName(), Labels: t.Labels},
			Spec: identityv1alpha1.CustomDatabaseConnectionSpec{
				TenantRef:      identityv1alpha1.TenantReference{Name: t.Name},
				ConnectionName: t.ConnectionName(),
				Scripts: identityv1alpha1.DatabaseScripts{
					Login:   identityv1alpha1.Script{Inline: LoginScript},
					GetUser: identityv1alpha1.Script{Inline: GetUserScript},
				},
				ConfigurationSecretRef: &identityv1alpha1.LocalObjectReference{Name: t.Name + "-legacy"},
				ImportMode:             true,
			},
		},
	}
}

// All is every object of the tenant, Secrets before what reads them.
func (t Tenant) All() []client.Object {
	return append(append(t.TenantObjects(), t.ProviderObjects()...), t.ConnectionObjects()...)
}
