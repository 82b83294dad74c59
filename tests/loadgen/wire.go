package main

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
)

// checkMethod is the full name of Envoy's ext_authz Check method.
const checkMethod = "/envoy.service.auth.v3.Authorization/Check"

// frame is a message in its protobuf wire form.
type frame []byte

// rawCodec sends requests that were encoded before the run and keeps the
// answers as bytes, which are decoded after their latency is taken: the
// load generator shares the machine with the gate, and encoding during the
// run would take CPU from it. The gate receives the same bytes as from the
// generated client. Its name keeps the content type application/grpc+proto.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	f, ok := v.(*frame)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot send %T", v)
	}
	return *f, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	f, ok := v.(*frame)
	if !ok {
		return fmt.Errorf("rawCodec: cannot receive into %T", v)
	}
	*f = append((*f)[:0], data...)
	return nil
}

var rawCall = grpc.ForceCodec(rawCodec{})

// check sends one encoded CheckRequest and leaves the encoded answer in
// answer (whose buffer is reused from call to call).
func check(ctx context.Context, conn *grpc.ClientConn, req frame, answer *frame) error {
	return conn.Invoke(ctx, checkMethod, &req, answer, rawCall)
}
