package extauthz

import (
	"strconv"

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

func peerValue(p *authv3.AttributeContext_Peer) ast.Value {
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
