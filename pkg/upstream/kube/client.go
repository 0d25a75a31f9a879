package kube

import (
	"context"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// apiClient is the slice of the Kubernetes API berth calls, on client-go's
// REST client with a scheme of only the groups it speaks. The generated
// clientset would link all ~50 API groups and their apply configurations
// into berthd: about 20 MiB more resident memory, with or without an
// upstream (measured; see make bench).
type apiClient struct {
	core, coord rest.Interface
	// authn and authz review the callers of berth's kubelet API.
	authn, authz rest.Interface
}

var (
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme)
	params = runtime.NewParameterCodec(scheme)
)

func init() {
	if err := v1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := coordinationv1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := authenticationv1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := authorizationv1.AddToScheme(scheme); err != nil {
		panic(err)
	}
}

func newAPIClient(base *rest.Config) (*apiClient, error) {
	restFor := func(gv schema.GroupVersion, apiPath string) (*rest.RESTClient, error) {
		c := rest.CopyConfig(base)
		c.GroupVersion, c.APIPath = &gv, apiPath
		c.NegotiatedSerializer = codecs.WithoutConversion()
		return rest.RESTClientFor(c)
	}
	core, err := restFor(v1.SchemeGroupVersion, "/api")
	if err != nil {
		return nil, err
	}
	coord, err := restFor(coordinationv1.SchemeGroupVersion, "/apis")
	if err != nil {
		return nil, err
	}
	authn, err := restFor(authenticationv1.SchemeGroupVersion, "/apis")
	if err != nil {
		return nil, err
	}
	authz, err := restFor(authorizationv1.SchemeGroupVersion, "/apis")
	if err != nil {
		return nil, err
	}
	return &apiClient{core: core, coord: coord, authn: authn, authz: authz}, nil
}

func (c *apiClient) createNode(ctx context.Context, n *v1.Node) (*v1.Node, error) {
	out := &v1.Node{}
	return out, c.core.Post().Resource("nodes").Body(n).Do(ctx).Into(out)
}

// getNode reads the Node; resourceVersion "0" lets the API server answer
// from its cache, as kubelet's status updates do.
func (c *apiClient) getNode(ctx context.Context, name, resourceVersion string) (*v1.Node, error) {
	out := &v1.Node{}
	return out, c.core.Get().Resource("nodes").Name(name).
		VersionedParams(&metav1.GetOptions{ResourceVersion: resourceVersion}, params).Do(ctx).Into(out)
}

func (c *apiClient) updateNode(ctx context.Context, n *v1.Node) (*v1.Node, error) {
	out := &v1.Node{}
	return out, c.core.Put().Resource("nodes").Name(n.Name).Body(n).Do(ctx).Into(out)
}

func (c *apiClient) updateNodeStatus(ctx context.Context, n *v1.Node) (*v1.Node, error) {
	out := &v1.Node{}
	return out, c.core.Put().Resource("nodes").Name(n.Name).SubResource("status").Body(n).Do(ctx).Into(out)
}

func (c *apiClient) getLease(ctx context.Context, ns, name string) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	return out, c.coord.Get().Namespace(ns).Resource("leases").Name(name).Do(ctx).Into(out)
}

func (c *apiClient) createLease(ctx context.Context, l *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	return out, c.coord.Post().Namespace(l.Namespace).Resource("leases").Body(l).Do(ctx).Into(out)
}

func (c *apiClient) updateLease(ctx context.Context, l *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	return out, c.coord.Put().Namespace(l.Namespace).Resource("leases").Name(l.Name).Body(l).Do(ctx).Into(out)
}

func (c *apiClient) patchPodStatus(ctx context.Context, ns, name string, mergePatch []byte) error {
	return c.core.Patch(types.MergePatchType).Namespace(ns).Resource("pods").Name(name).SubResource("status").
		Body(mergePatch).Do(ctx).Error()
}

func (c *apiClient) deletePod(ctx context.Context, ns, name string, opts metav1.DeleteOptions) error {
	return c.core.Delete().Namespace(ns).Resource("pods").Name(name).Body(&opts).Do(ctx).Error()
}

// podsOn lists and watches the pods bound to node.
func (c *apiClient) podsOn(node string) cache.ListerWatcher {
	return cache.NewFilteredListWatchFromClient(c.core, "pods", metav1.NamespaceAll, func(o *metav1.ListOptions) {
		o.FieldSelector = "spec.nodeName=" + node
	})
}

func (c *apiClient) getConfigMap(ctx context.Context, ns, name string) (*v1.ConfigMap, error) {
	out := &v1.ConfigMap{}
	return out, c.core.Get().Namespace(ns).Resource("configmaps").Name(name).Do(ctx).Into(out)
}

func (c *apiClient) getSecret(ctx context.Context, ns, name string) (*v1.Secret, error) {
	out := &v1.Secret{}
	return out, c.core.Get().Namespace(ns).Resource("secrets").Name(name).Do(ctx).Into(out)
}

// createToken asks for a service account token bound to the pod (the
// Node authorizer lets a node do so for its own pods only).
func (c *apiClient) createToken(ctx context.Context, ns, serviceAccount string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
	out := &authenticationv1.TokenRequest{}
	return out, c.core.Post().Namespace(ns).Resource("serviceaccounts").Name(serviceAccount).SubResource("token").
		Body(req).Do(ctx).Into(out)
}

func (c *apiClient) createTokenReview(ctx context.Context, r *authenticationv1.TokenReview) (*authenticationv1.TokenReview, error) {
	out := &authenticationv1.TokenReview{}
	return out, c.authn.Post().Resource("tokenreviews").Body(r).Do(ctx).Into(out)
}

func (c *apiClient) createSubjectAccessReview(ctx context.Context, r *authorizationv1.SubjectAccessReview) (*authorizationv1.SubjectAccessReview, error) {
	out := &authorizationv1.SubjectAccessReview{}
	return out, c.authz.Post().Resource("subjectaccessreviews").Body(r).Do(ctx).Into(out)
}

// The record.EventSink that client-go's event broadcaster (aggregation,
// spam filtering) posts through.

func (c *apiClient) Create(e *v1.Event) (*v1.Event, error) {
	out := &v1.Event{}
	return out, c.core.Post().Namespace(e.Namespace).Resource("events").Body(e).Do(context.Background()).Into(out)
}

func (c *apiClient) Update(e *v1.Event) (*v1.Event, error) {
	out := &v1.Event{}
	return out, c.core.Put().Namespace(e.Namespace).Resource("events").Name(e.Name).Body(e).Do(context.Background()).Into(out)
}

func (c *apiClient) Patch(e *v1.Event, data []byte) (*v1.Event, error) {
	out := &v1.Event{}
	return out, c.core.Patch(types.StrategicMergePatchType).Namespace(e.Namespace).Resource("events").Name(e.Name).
		Body(data).Do(context.Background()).Into(out)
}

func (c *apiClient) createPod(ctx context.Context, pod *v1.Pod) (*v1.Pod, error) {
	out := &v1.Pod{}
	return out, c.core.Post().Namespace(pod.Namespace).Resource("pods").Body(pod).Do(ctx).Into(out)
}
