package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// show sends one Check, for "METHOD PATH", and prints the whole answer as
// Envoy would act on it: the status, then the headers the client gets (a
// denial's, and on OK those added to the upstream's response), the headers
// the upstream gets, and a denial's body. It is the tour's way of seeing
// what the gate answers without an Envoy (README.md, docs/envoy.md).
//
// The credential is the first token of tokensFile ("-" reads standard
// input), sent as Git sends one (Basic, any user name) on a Git path and as
// a Bearer token elsewhere; without tokensFile the request carries none.
func show(o options, request, tokensFile string, in io.Reader, out io.Writer) error {
	if err := checkLoopback(o.addr); err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	method, path, ok := strings.Cut(strings.TrimSpace(request), " ")
	path = strings.TrimSpace(path)
	if !ok || method == "" || !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t") {
		return fmt.Errorf(`-show: %q is not "METHOD /path"`, request)
	}
	req := checkRequest(strings.ToUpper(method), path, "", 0)
	if tokensFile != "" {
		tokens, err := readTokensFrom(tokensFile, in)
		if err != nil {
			return err
		}
		auth := "Bearer " + tokens[0].token
		if gitPath(path) {
			auth = "Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+tokens[0].token))
		}
		req.Attributes.Request.Http.Headers["authorization"] = auth
	} else {
		delete(req.Attributes.Request.Http.Headers, "authorization")
	}

	conn, err := grpc.NewClient(o.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, req)
	if err != nil {
		return fmt.Errorf("Check: %w", err)
	}
	return printAnswer(out, resp)
}

// gitPath reports whether path is Git smart HTTP or LFS, which git and
// git-lfs authenticate with Basic credentials.
func gitPath(path string) bool {
	p, _, _ := strings.Cut(path, "?")
	return strings.Contains(p, ".git/") || strings.HasSuffix(p, "/info/refs") ||
		strings.HasSuffix(p, "/git-upload-pack") || strings.HasSuffix(p, "/git-receive-pack") ||
		strings.Contains(p, "/info/lfs/")
}

func printAnswer(out io.Writer, resp *authv3.CheckResponse) error {
	if resp.GetStatus().GetCode() != 0 {
		// Envoy answers a denial without an HTTP response 403.
		d := resp.GetDeniedResponse()
		code := http.StatusForbidden
		if c := int(d.GetStatus().GetCode()); c != 0 {
			code = c
		}
		fmt.Fprintf(out, "%d %s\n", code, http.StatusText(code))
		printHeaders(out, "", d.GetHeaders())
		if d.GetBody() != "" {
			fmt.Fprintln(out, d.GetBody())
		}
		return nil
	}
	if resp.GetDeniedResponse() != nil {
		return errors.New("the answer's status is OK, but it carries a denial")
	}
	ok := resp.GetOkResponse()
	fmt.Fprintln(out, "200 OK (Envoy forwards the request)")
	printHeaders(out, "to the upstream: ", ok.GetHeaders())
	if rm := ok.GetHeadersToRemove(); len(rm) > 0 {
		fmt.Fprintf(out, "removed before the upstream: %s\n", strings.Join(rm, ", "))
	}
	printHeaders(out, "to the client: ", ok.GetResponseHeadersToAdd())
	return nil
}

func printHeaders(out io.Writer, label string, hs []*corev3.HeaderValueOption) {
	lines := make([]string, 0, len(hs))
	for _, h := range hs {
		lines = append(lines, label+h.GetHeader().GetKey()+": "+h.GetHeader().GetValue())
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}
}

// readTokensFrom is readTokens, with "-" for in.
func readTokensFrom(path string, in io.Reader) ([]target, error) {
	if path != "-" {
		return readTokens(path)
	}
	tokens, err := scanTokens(in)
	if err != nil {
		return nil, err
	}
	if len(tokens) == 0 {
		return nil, errors.New("standard input: no tokens")
	}
	return tokens, nil
}
