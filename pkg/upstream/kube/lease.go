package kube

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/berth-project/berth/pkg/upstream"
)

// renewLease keeps the node's Lease renewed: the heartbeat the node
// lifecycle controller watches. Each renewal's outcome is the plugin's
// connection state.
func (p *Plugin) renewLease(ctx context.Context, node *v1.Node, sink upstream.Sink) {
	var lease *coordinationv1.Lease
	for {
		var err error
		lease, err = p.renewOnce(ctx, node, lease)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			lease = nil // read it again next time
			sink.Connected(fmt.Errorf("renew lease %s/%s: %w", nodeLeaseNamespace, node.Name, err))
		} else {
			sink.Connected(nil)
		}
		select {
		case <-ctx.Done():
			return
		case <-p.cfg.Clock.After(leaseRenew):
		}
	}
}

// renewOnce updates the lease last written (one request, as kubelet),
// reading or creating it only when there is none.
func (p *Plugin) renewOnce(ctx context.Context, node *v1.Node, last *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	cctx, cancel := context.WithTimeout(ctx, leaseRenew)
	defer cancel()
	if last == nil {
		got, err := p.client.getLease(cctx, nodeLeaseNamespace, node.Name)
		switch {
		case apierrors.IsNotFound(err):
			return p.client.createLease(cctx, p.newLease(node))
		case err != nil:
			return nil, err
		}
		last = got
	}
	l := last.DeepCopy()
	l.Spec.HolderIdentity = ptr.To(node.Name)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(leaseDuration / time.Second))
	l.Spec.RenewTime = &metav1.MicroTime{Time: p.cfg.Clock.Now()}
	if len(l.OwnerReferences) == 0 {
		l.OwnerReferences = nodeOwner(node)
	}
	return p.client.updateLease(cctx, l)
}

func (p *Plugin) newLease(node *v1.Node) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: node.Name, Namespace: nodeLeaseNamespace, OwnerReferences: nodeOwner(node)},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(node.Name),
			LeaseDurationSeconds: ptr.To(int32(leaseDuration / time.Second)),
			RenewTime:            &metav1.MicroTime{Time: p.cfg.Clock.Now()},
		},
	}
}

// nodeOwner makes the Node own what berth creates for it, so that
// deleting the Node deletes them.
func nodeOwner(node *v1.Node) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
}
