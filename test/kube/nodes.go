package kube

import (
	"context"
	"crypto/rand"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ClientCert issues a client certificate (PEM cert and key) signed by the
// cluster CA: the apiserver takes cn as the user name and groups as its
// groups.
func (c *Cluster) ClientCert(t T, cn string, groups ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	cert, key, err := c.ca.clientCert(cn, groups...)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// NodeKubeconfig writes a kubeconfig for the node nodeName, as a kubelet
// that already has its client certificate uses (CN=system:node:<name>,
// O=system:nodes), and returns its path.
func (c *Cluster) NodeKubeconfig(t T, nodeName string) string {
	t.Helper()
	cert, key := c.ClientCert(t, "system:node:"+nodeName, "system:nodes")
	return c.kubeconfig(t, "node-"+nodeName+"-"+randToken(6), clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key})
}

// BootstrapKubeconfig creates a bootstrap token as `kubeadm token create`
// does, with the RBAC a kubeadm cluster has for TLS bootstrapping (the
// token may create CSRs; nodes' renewal CSRs are approved automatically,
// first ones are not), and returns the path of a kubeconfig using the token.
// It returns once the apiserver accepts the token for creating CSRs.
func (c *Cluster) BootstrapKubeconfig(t T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs := c.Client(t)
	id, secret := randToken(6), randToken(16)
	_, err := cs.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-" + id, Namespace: metav1.NamespaceSystem},
		Type:       corev1.SecretTypeBootstrapToken,
		StringData: map[string]string{
			"description":                    "berth test bootstrap token",
			"token-id":                       id,
			"token-secret":                   secret,
			"expiration":                     time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339),
			"usage-bootstrap-authentication": "true",
			"usage-bootstrap-signing":        "true",
			"auth-extra-groups":              "system:bootstrappers:kubeadm:default-node-token",
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.bindGroup(ctx, t, "kubeadm:kubelet-bootstrap", "system:node-bootstrapper", "system:bootstrappers")
	c.bindGroup(ctx, t, "kubeadm:node-autoapprove-certificate-rotation",
		"system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", "system:nodes")
	path := c.kubeconfig(t, "bootstrap-"+id, clientcmdapi.AuthInfo{Token: id + "." + secret})

	// The token authenticator and RBAC read through informers, so the new
	// Secret and bindings take effect a moment later.
	bc := c.ClientFor(t, path)
	c.waitFor(t, "bootstrap token "+id+" to authenticate", time.Minute, func(ctx context.Context) (bool, error) {
		r, err := bc.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
		return err == nil && r.Status.UserInfo.Username == "system:bootstrap:"+id, err
	})
	c.waitFor(t, "bootstrap token "+id+" to be allowed to create CSRs", time.Minute, func(ctx context.Context) (bool, error) {
		r, err := bc.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{
			Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authzv1.ResourceAttributes{
				Group: "certificates.k8s.io", Resource: "certificatesigningrequests", Verb: "create",
			}},
		}, metav1.CreateOptions{})
		return err == nil && r.Status.Allowed, err
	})
	return path
}

// bindGroup binds ClusterRole role to group, keeping a binding that exists.
func (c *Cluster) bindGroup(ctx context.Context, t T, name, role, group string) {
	t.Helper()
	_, err := c.Client(t).RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: group}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// randToken returns n characters of [a-z0-9], the bootstrap token alphabet.
func randToken(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
