package kubeletapi

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/util/cache"
)

// AccessReviewer asks the API server whether a user may do something.
type AccessReviewer interface {
	// ReviewAccess posts a SubjectAccessReview of spec. It blocks for one
	// API request; an error means no answer (not a denial).
	ReviewAccess(ctx context.Context, spec authorizationv1.SubjectAccessReviewSpec) (authorizationv1.SubjectAccessReviewStatus, error)
}

// How long an answer is kept: kubelet's authorization.webhook
// cacheAuthorizedTTL and cacheUnauthorizedTTL defaults.
const (
	allowedTTL = 5 * time.Minute
	deniedTTL  = 30 * time.Second
)

// authorizer decides on verb nodes/<node>/<subresource> for a user, as
// kubelet's webhook authorizer does.
type authorizer struct {
	node   string
	access AccessReviewer
	cache  *cache.LRUExpireCache // accessKey → bool
}

func newAuthorizer(node string, access AccessReviewer, clock cache.Clock) *authorizer {
	return &authorizer{node: node, access: access, cache: cache.NewLRUExpireCacheWithClock(4096, clock)}
}

// accessKey is one question, comparable so that it keys the cache.
type accessKey struct {
	user, uid, groups, extra string
	verb, subresource        string
}

func keyOf(u user, verb, subresource string) accessKey {
	var extra []string
	for k, vs := range u.extra {
		extra = append(extra, k+"="+strings.Join(vs, "\x00"))
	}
	slices.Sort(extra)
	return accessKey{user: u.name, uid: u.uid, groups: strings.Join(u.groups, "\x00"), extra: strings.Join(extra, "\x01"),
		verb: verb, subresource: subresource}
}

// allowed says whether u may verb nodes/<node>/<subresource>.
func (a *authorizer) allowed(ctx context.Context, u user, verb, subresource string) (bool, error) {
	key := keyOf(u, verb, subresource)
	if v, ok := a.cache.Get(key); ok {
		return v.(bool), nil
	}
	spec := authorizationv1.SubjectAccessReviewSpec{
		User: u.name, UID: u.uid, Groups: u.groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: verb, Version: "v1", Resource: "nodes", Subresource: subresource, Name: a.node,
		},
	}
	if len(u.extra) > 0 {
		spec.Extra = map[string]authorizationv1.ExtraValue{}
		for k, v := range u.extra {
			spec.Extra[k] = v
		}
	}
	st, err := a.access.ReviewAccess(ctx, spec)
	if err != nil {
		return false, fmt.Errorf("authorize %s %s nodes/%s/%s: %w", u.name, verb, a.node, subresource, err)
	}
	ok := st.Allowed && !st.Denied
	ttl := deniedTTL
	if ok {
		ttl = allowedTTL
	}
	a.cache.Add(key, ok, ttl)
	return ok, nil
}
