package extauthz

import (
	"strconv"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
)

// The source and destination of every Check, in their protojson form, built
// by hand: walking the two peers by reflection was about a tenth of an
// uncached Check's CPU. Every field of Peer, Address and SocketAddress is
// written here (TestPeerFieldsKnown fails when Envoy's protos add one);
// addresses other than socket addresses (pipes, internal addresses) take the
// generic walk.

var (
	keyAddress       = ast.InternedTerm("address")
	keySocketAddress = ast.InternedTerm("socketAddress")
	keyPortValue     = ast.InternedTerm("portValue")
	keyNamedPort     = ast.InternedTerm("namedPort")
	keyResolverName  = ast.InternedTerm("resolverName")
	keyIPv4Compat    = ast.InternedTerm("ipv4Compat")
	keyNetNS         = ast.InternedTerm("networkNamespaceFilepath")
	keyService       = ast.InternedTerm("service")
	keyLabels        = ast.InternedTerm("labels")
	keyPrincipal     = ast.InternedTerm("principal")
	keyCertificate   = ast.InternedTerm("certificate")
)

// peerKey is a peer the cache answers for: a TCP socket address with a
// port number, a service and a principal, and nothing else.
type peerKey struct {
	address, service, principal string
	port                        uint32
}

// valueCache keeps the values of recent peers. The destination is the
// listener Envoy received the request on, the same for every Check, and a
// source repeats for the requests of one downstream connection; each value
// is 4 objects (about 1 KB) to build. Values are immutable and shared by
// evaluations, as the terms of a compiled policy are. Bounded: when full it
// starts over. Small, because its values are memory the collector scans on
// every cycle: with a source port per request (many clients, or the load
// generator), 1,024 entries were 1 MB of values that never hit.
type valueCache[K comparable] struct {
	mu sync.RWMutex
	m  map[K]ast.Value
}

const peerCacheEntries = 64

func newValueCache[K comparable]() *valueCache[K] {
	return &valueCache[K]{m: make(map[K]ast.Value, peerCacheEntries)}
}

func (c *valueCache[K]) get(k K) (ast.Value, bool) {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	return v, ok
}

func (c *valueCache[K]) put(k K, v ast.Value) {
	c.mu.Lock()
	if len(c.m) >= peerCacheEntries {
		clear(c.m)
	}
	c.m[k] = v
	c.mu.Unlock()
}

// peers is keyed by what a peer holds; wirePeers (wire.go) by its encoding.
var peers = newValueCache[peerKey]()

// cacheablePeer returns p's key, or false when p holds more than the key
// says (labels, a certificate, an address other than a TCP port).
func cacheablePeer(p *authv3.AttributeContext_Peer) (peerKey, bool) {
	sa := p.GetAddress().GetSocketAddress()
	port, ok := sa.GetPortSpecifier().(*corev3.SocketAddress_PortValue)
	if !ok || sa.GetProtocol() != corev3.SocketAddress_TCP || sa.GetResolverName() != "" || sa.GetIpv4Compat() ||
		sa.GetNetworkNamespaceFilepath() != "" || len(p.GetLabels()) > 0 || p.GetCertificate() != "" {
		return peerKey{}, false
	}
	return peerKey{address: sa.GetAddress(), service: p.GetService(), principal: p.GetPrincipal(), port: port.PortValue}, true
}

func peerValue(p *authv3.AttributeContext_Peer) ast.Value {
	k, ok := cacheablePeer(p)
	if !ok {
		return buildPeer(p)
	}
	if v, hit := peers.get(k); hit {
		return v
	}
	v := buildPeer(p)
	peers.put(k, v)
	return v
}

func buildPeer(p *authv3.AttributeContext_Peer) ast.Value {
	pairs := make([][2]*ast.Term, 0, 5)
	if a := p.GetAddress(); a != nil {
		pairs = append(pairs, [2]*ast.Term{keyAddress, ast.NewTerm(addressValue(a))})
	}
	pairs = appendString(pairs, keyService, p.GetService())
	if labels := p.GetLabels(); len(labels) > 0 {
		ls := make([][2]*ast.Term, 0, len(labels))
		for k, v := range labels {
			ls = append(ls, [2]*ast.Term{ast.StringTerm(k), ast.StringTerm(v)})
		}
		pairs = append(pairs, [2]*ast.Term{keyLabels, ast.NewTerm(ast.NewObject(ls...))})
	}
	pairs = appendString(pairs, keyPrincipal, p.GetPrincipal())
	pairs = appendString(pairs, keyCertificate, p.GetCertificate())
	return ast.NewObject(pairs...)
}

func addressValue(a *corev3.Address) ast.Value {
	sa, ok := a.GetAddress().(*corev3.Address_SocketAddress)
	if !ok || sa.SocketAddress == nil {
		return messageValue(a.ProtoReflect())
	}
	return ast.NewObject([2]*ast.Term{keySocketAddress, ast.NewTerm(socketAddressValue(sa.SocketAddress))})
}

func socketAddressValue(sa *corev3.SocketAddress) ast.Value {
	pairs := make([][2]*ast.Term, 0, 3)
	if p := sa.GetProtocol(); p != 0 {
		v := ast.Value(ast.Number(strconv.Itoa(int(p)))) // protojson writes unknown enum values as numbers
		if name, ok := corev3.SocketAddress_Protocol_name[int32(p)]; ok {
			v = ast.String(name)
		}
		pairs = append(pairs, [2]*ast.Term{keyProtocol, ast.NewTerm(v)})
	}
	pairs = appendString(pairs, keyAddress, sa.GetAddress())
	switch ps := sa.GetPortSpecifier().(type) { // a oneof: written when set, even to zero
	case *corev3.SocketAddress_PortValue:
		pairs = append(pairs, [2]*ast.Term{keyPortValue, ast.UIntNumberTerm(uint64(ps.PortValue))})
	case *corev3.SocketAddress_NamedPort:
		pairs = append(pairs, [2]*ast.Term{keyNamedPort, ast.StringTerm(ps.NamedPort)})
	}
	pairs = appendString(pairs, keyResolverName, sa.GetResolverName())
	if sa.GetIpv4Compat() {
		pairs = append(pairs, [2]*ast.Term{keyIPv4Compat, ast.InternedTerm(true)})
	}
	pairs = appendString(pairs, keyNetNS, sa.GetNetworkNamespaceFilepath())
	return ast.NewObject(pairs...)
}

// appendString adds k: s unless s is empty (proto3 leaves empty strings out).
func appendString(pairs [][2]*ast.Term, k *ast.Term, s string) [][2]*ast.Term {
	if s == "" {
		return pairs
	}
	return append(pairs, [2]*ast.Term{k, ast.StringTerm(s)})
}
