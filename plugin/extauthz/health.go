package extauthz

import (
	"context"
	"sync"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// errDraining ends a health Watch stream when the server begins to drain,
// right after the watcher was told NOT_SERVING: UNAVAILABLE, as any other
// call the gate refuses while it stops.
var errDraining = status.Error(codes.Unavailable, "ext_authz gRPC server is shutting down")

// healthService is the gate's grpc.health.v1.Health: the overall "" service
// and the Authorization service are SERVING until the server drains, then
// NOT_SERVING. grpc-go's health.Server keeps a Watch stream open after it
// sent NOT_SERVING, and GracefulStop waits for every stream: one watcher
// would hold the drain until shutdown_timeout and then have the Checks in
// flight cut off. Here a Watch ends once the watcher knows.
type healthService struct {
	healthpb.UnimplementedHealthServer

	draining  chan struct{} // closed when the drain begins
	drainOnce sync.Once
}

func newHealthService() *healthService {
	return &healthService{draining: make(chan struct{})}
}

// drain reports NOT_SERVING from now on and ends the Watch streams, each
// once it has sent NOT_SERVING.
func (h *healthService) drain() { h.drainOnce.Do(func() { close(h.draining) }) }

// status is the status of service, and whether the gate knows it.
func (h *healthService) status(service string) (healthpb.HealthCheckResponse_ServingStatus, bool) {
	if service != "" && service != serviceName {
		return healthpb.HealthCheckResponse_SERVICE_UNKNOWN, false
	}
	select {
	case <-h.draining:
		return healthpb.HealthCheckResponse_NOT_SERVING, true
	default:
		return healthpb.HealthCheckResponse_SERVING, true
	}
}

// Check answers the status of a service the gate serves, NOT_FOUND for
// another (as the health protocol says).
func (h *healthService) Check(_ context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	st, ok := h.status(req.GetService())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "unknown service %q", req.GetService())
	}
	return &healthpb.HealthCheckResponse{Status: st}, nil
}

// List answers the status of both services.
func (h *healthService) List(context.Context, *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	st, _ := h.status("")
	return &healthpb.HealthListResponse{Statuses: map[string]*healthpb.HealthCheckResponse{
		"":          {Status: st},
		serviceName: {Status: st},
	}}, nil
}

// Watch sends the service's status (SERVICE_UNKNOWN for a service the gate
// does not serve), and when the drain begins NOT_SERVING, then ends with
// errDraining. The status changes only then: there is nothing else to send.
func (h *healthService) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	st, _ := h.status(req.GetService())
	if err := stream.Send(&healthpb.HealthCheckResponse{Status: st}); err != nil {
		return err
	}
	select {
	case <-stream.Context().Done():
		return status.FromContextError(stream.Context().Err()).Err()
	case <-h.draining:
	}
	if st == healthpb.HealthCheckResponse_SERVING {
		if err := stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING}); err != nil {
			return err
		}
	}
	return errDraining
}
