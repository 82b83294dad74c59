package extauthz

import (
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// serveHealth serves a healthService alone on a loopback port, with a
// client connected to it. The server is not stopped before the test ends:
// the health service drains by itself, as Stop begins it.
func serveHealth(t *testing.T) (*healthService, healthpb.HealthClient) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := newHealthService()
	healthpb.RegisterHealthServer(gs, hs)
	go func() { _ = gs.Serve(lis) }() // ends with gs.Stop below
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return hs, healthpb.NewHealthClient(conn)
}

// wantStatus fails unless err is a gRPC status with code c and message msg.
func wantStatus(t *testing.T, what string, err error, c codes.Code, msg string) {
	t.Helper()
	if st, ok := status.FromError(err); !ok || st.Code() != c || st.Message() != msg {
		t.Fatalf("%s: got %v; want %s: %s", what, err, c, msg)
	}
}

// recvWithin is watch.Recv, failing the test when nothing came in 5s.
func recvWithin(t *testing.T, what string, watch healthpb.Health_WatchClient) (*healthpb.HealthCheckResponse, error) {
	t.Helper()
	type received struct {
		resp *healthpb.HealthCheckResponse
		err  error
	}
	got := make(chan received, 1)
	go func() {
		resp, err := watch.Recv()
		got <- received{resp, err}
	}()
	select {
	case r := <-got:
		return r.resp, r.err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: nothing received in 5s", what)
		return nil, nil
	}
}

// wantWatch fails unless watch sends the statuses want, then ends with
// UNAVAILABLE.
func wantWatch(t *testing.T, what string, watch healthpb.Health_WatchClient, want ...healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	for i, st := range want {
		resp, err := recvWithin(t, what, watch)
		if err != nil || resp.GetStatus() != st {
			t.Fatalf("%s, message %d: got %v, %v; want %s", what, i+1, resp, err, st)
		}
	}
	_, err := recvWithin(t, what+", end", watch)
	wantStatus(t, what+", end", err, codes.Unavailable, "ext_authz gRPC server is shutting down")
}

func TestHealthService(t *testing.T) {
	hs, hc := serveHealth(t)
	ctx := t.Context()
	const (
		serving    = healthpb.HealthCheckResponse_SERVING
		notServing = healthpb.HealthCheckResponse_NOT_SERVING
		unknown    = healthpb.HealthCheckResponse_SERVICE_UNKNOWN
	)

	check := func(state string, want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for _, svc := range []string{"", serviceName} {
			resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err != nil || resp.GetStatus() != want {
				t.Fatalf("%s: Check %q: got %v, %v; want %s", state, svc, resp, err, want)
			}
		}
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "grpc.health.v1.Health"})
		wantStatus(t, state+": Check of another service", err, codes.NotFound, `unknown service "grpc.health.v1.Health"`)
		list, err := hc.List(ctx, &healthpb.HealthListRequest{})
		wantList := &healthpb.HealthListResponse{Statuses: map[string]*healthpb.HealthCheckResponse{"": {Status: want}, serviceName: {Status: want}}}
		if err != nil || !proto.Equal(list, wantList) {
			t.Fatalf("%s: List: got %v, %v; want %v", state, list, err, wantList)
		}
	}
	watch := func(svc string) healthpb.Health_WatchClient {
		t.Helper()
		w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}

	check("serving", serving)
	overall, authz, other := watch(""), watch(serviceName), watch("grpc.health.v1.Health")
	for what, w := range map[string]healthpb.Health_WatchClient{"watch \"\"": overall, "watch " + serviceName: authz} {
		if resp, err := recvWithin(t, what, w); err != nil || resp.GetStatus() != serving {
			t.Fatalf("%s: got %v, %v; want SERVING", what, resp, err)
		}
	}
	if resp, err := recvWithin(t, "watch of another service", other); err != nil || resp.GetStatus() != unknown {
		t.Fatalf("watch of another service: got %v, %v; want SERVICE_UNKNOWN", resp, err)
	}

	hs.drain()
	hs.drain() // a second drain changes nothing
	wantWatch(t, `watch ""`, overall, notServing)
	wantWatch(t, "watch "+serviceName, authz, notServing)
	wantWatch(t, "watch of another service", other)
	// Check keeps answering while the server drains.
	check("draining", notServing)
	// A watch that begins during the drain is told NOT_SERVING and ends.
	wantWatch(t, "watch begun while draining", watch(""), notServing)
}
