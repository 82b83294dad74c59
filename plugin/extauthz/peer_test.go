package extauthz

import (
	"bytes"
	"slices"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// peer.go writes every field of these messages by hand; a new field in
// Envoy's protos must be added there (and here).
func TestPeerFieldsKnown(t *testing.T) {
	for _, tc := range []struct {
		note string
		msg  protoreflect.Message
		want []string
	}{
		{note: "peer", msg: (&authv3.AttributeContext_Peer{}).ProtoReflect(),
			want: []string{"address", "service", "labels", "principal", "certificate"}},
		{note: "address", msg: (&corev3.Address{}).ProtoReflect(),
			want: []string{"socket_address", "pipe", "envoy_internal_address"}},
		{note: "socket address", msg: (&corev3.SocketAddress{}).ProtoReflect(),
			want: []string{"protocol", "address", "port_value", "named_port", "resolver_name", "ipv4_compat", "network_namespace_filepath"}},
	} {
		t.Run(tc.note, func(t *testing.T) {
			var got []string
			fields := tc.msg.Descriptor().Fields()
			for i := range fields.Len() {
				got = append(got, string(fields.Get(i).Name()))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("fields %q; peer.go writes %q", got, tc.want)
			}
		})
	}
}

// Peers with every field set, and the rarer addresses, read exactly as
// protojson writes them.
func TestPeerMatchesProtojson(t *testing.T) {
	for _, tc := range []struct {
		note string
		peer *authv3.AttributeContext_Peer
	}{
		{note: "empty", peer: &authv3.AttributeContext_Peer{}},
		{note: "ip and port", peer: &authv3.AttributeContext_Peer{Address: socket(&corev3.SocketAddress{
			Address: "10.0.0.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 53122}})}},
		{note: "port zero, set", peer: &authv3.AttributeContext_Peer{Address: socket(&corev3.SocketAddress{
			Address: "10.0.0.7", PortSpecifier: &corev3.SocketAddress_PortValue{}})}},
		{note: "every field", peer: &authv3.AttributeContext_Peer{
			Address: socket(&corev3.SocketAddress{Protocol: corev3.SocketAddress_UDP, Address: "::1",
				PortSpecifier: &corev3.SocketAddress_NamedPort{NamedPort: "https"}, ResolverName: "dns", Ipv4Compat: true,
				NetworkNamespaceFilepath: "/var/run/netns/a"}),
			Service: "git", Labels: map[string]string{"app": "git", "zone": "b"}, Principal: "spiffe://git", Certificate: "-----BEGIN",
		}},
		{note: "unknown protocol number", peer: &authv3.AttributeContext_Peer{Address: socket(&corev3.SocketAddress{Protocol: 7})}},
		{note: "pipe", peer: &authv3.AttributeContext_Peer{Address: &corev3.Address{
			Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/run/envoy.sock", Mode: 0o600}}}}},
		{note: "internal address", peer: &authv3.AttributeContext_Peer{Address: &corev3.Address{
			Address: &corev3.Address_EnvoyInternalAddress{EnvoyInternalAddress: &corev3.EnvoyInternalAddress{
				AddressNameSpecifier: &corev3.EnvoyInternalAddress_ServerListenerName{ServerListenerName: "l"}}}}}},
	} {
		t.Run(tc.note, func(t *testing.T) {
			bs, err := protojson.Marshal(tc.peer)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ast.ValueFromReader(bytes.NewReader(bs))
			if err != nil {
				t.Fatal(err)
			}
			if got := peerValue(tc.peer); got.Compare(want) != 0 {
				t.Fatalf("got  %v\nwant %v", got, want)
			}
		})
	}
}

func socket(sa *corev3.SocketAddress) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: sa}}
}

// A cached peer is the value protojson gives for that very peer: peers that
// differ in any field of the key get their own value, and peers the key
// cannot describe are built every time.
func TestPeerCache(t *testing.T) {
	base := func() *authv3.AttributeContext_Peer {
		return &authv3.AttributeContext_Peer{Address: socket(&corev3.SocketAddress{
			Address: "10.0.0.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8443}}),
			Service: "git", Principal: "spiffe://a"}
	}
	variants := map[string]func(*authv3.AttributeContext_Peer){
		"as is":         func(*authv3.AttributeContext_Peer) {},
		"other address": func(p *authv3.AttributeContext_Peer) { p.Address.GetSocketAddress().Address = "10.0.0.8" },
		"other port": func(p *authv3.AttributeContext_Peer) {
			p.Address.GetSocketAddress().PortSpecifier = &corev3.SocketAddress_PortValue{PortValue: 8444}
		},
		"port zero": func(p *authv3.AttributeContext_Peer) {
			p.Address.GetSocketAddress().PortSpecifier = &corev3.SocketAddress_PortValue{}
		},
		"other service": func(p *authv3.AttributeContext_Peer) { p.Service = "rest" },
		"no principal":  func(p *authv3.AttributeContext_Peer) { p.Principal = "" },
		"labels":        func(p *authv3.AttributeContext_Peer) { p.Labels = map[string]string{"zone": "b"} },
		"certificate":   func(p *authv3.AttributeContext_Peer) { p.Certificate = "-----BEGIN" },
		"udp": func(p *authv3.AttributeContext_Peer) {
			p.Address.GetSocketAddress().Protocol = corev3.SocketAddress_UDP
		},
		"named port": func(p *authv3.AttributeContext_Peer) {
			p.Address.GetSocketAddress().PortSpecifier = &corev3.SocketAddress_NamedPort{NamedPort: "https"}
		},
		"resolver":    func(p *authv3.AttributeContext_Peer) { p.Address.GetSocketAddress().ResolverName = "dns" },
		"ipv4 compat": func(p *authv3.AttributeContext_Peer) { p.Address.GetSocketAddress().Ipv4Compat = true },
		"namespace": func(p *authv3.AttributeContext_Peer) {
			p.Address.GetSocketAddress().NetworkNamespaceFilepath = "/run/netns/a"
		},
		"no address": func(p *authv3.AttributeContext_Peer) { p.Address = nil },
		"pipe": func(p *authv3.AttributeContext_Peer) {
			p.Address = &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/run/e.sock"}}}
		},
	}
	// Twice over: the second round is answered from the cache where it can be.
	for round := range 2 {
		for note, change := range variants {
			p := base()
			change(p)
			bs, err := protojson.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ast.ValueFromReader(bytes.NewReader(bs))
			if err != nil {
				t.Fatal(err)
			}
			if got := peerValue(p); got.Compare(want) != 0 {
				t.Fatalf("round %d, %s: got  %v\nwant %v", round, note, got, want)
			}
		}
	}
	if _, ok := cacheablePeer(base()); !ok {
		t.Fatal("a TCP peer with a port, a service and a principal is not cached")
	}
	for i := range peerCacheEntries + 10 {
		p := base()
		p.Address.GetSocketAddress().PortSpecifier = &corev3.SocketAddress_PortValue{PortValue: uint32(i)}
		peerValue(p)
	}
	peers.mu.RLock()
	n := len(peers.m)
	peers.mu.RUnlock()
	if n > peerCacheEntries {
		t.Fatalf("the peer cache holds %d entries, more than %d", n, peerCacheEntries)
	}
}
