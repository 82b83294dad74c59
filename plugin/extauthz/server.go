package extauthz

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	runtimemetrics "runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/uuid"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/logging"
	opametrics "github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/plugins/logs"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/server"
	"github.com/open-policy-agent/opa/v1/storage"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/opa-pat/opa-pat/plugin/extauthz/rawio"
)

// serviceName is the gRPC service the health service reports on (as well
// as the overall "" service).
const serviceName = "envoy.service.auth.v3.Authorization"

// The HTTP/2 flow-control windows the gate grants: 1 MiB for each Check,
// 16 MiB for a connection (Envoy's defaults are larger still). With fixed
// windows grpc-go sends no bandwidth probes.
const (
	streamWindow = 1 << 20
	connWindow   = 16 << 20
)

// logField tags the gate's log lines.
var logField = map[string]any{"plugin": "pat", "component": "ext_authz"}

// Server is the ext_authz gRPC server. New prepares it, Start binds and
// serves, Stop drains and closes; a stopped Server can be started again.
type Server struct {
	authv3.UnimplementedAuthorizationServer

	manager *plugins.Manager
	cfg     *Config
	logger  logging.Logger
	metrics *metrics
	cache   *decisionCache           // nil: no cache
	version func() int64             // nil: no version to follow
	current func(now time.Time) bool // nil: what the built-ins answer from is always current
	failed  func(error)              // nil: nobody to tell when serving stops by itself
	trigger storage.TriggerHandle

	// The prepared decision query; nil after a compiler change until the
	// next Check (or Start) prepares it again. gen counts compiler changes so
	// that a query prepared against an old compiler is not kept.
	prepMu sync.Mutex
	pq     atomic.Pointer[rego.PreparedEvalQuery]
	gen    atomic.Uint64

	mu      sync.Mutex
	grpc    *grpc.Server
	health  *healthService
	lis     net.Listener
	serving atomic.Bool
	done    chan struct{}
}

// Option configures a Server.
type Option func(*Server)

// WithVersion gives the version of what the pat.* built-ins answer from
// (the token index's change-log sequence number): a cached decision is used
// only while the version is the one it was decided at, so a token revoked
// or a request approved reaches the next Check.
func WithVersion(version func() int64) Option {
	return func(s *Server) { s.version = version }
}

// WithCurrent gives whether what the pat.* built-ins answer from may be
// used at a time (the token index caught up with the store within
// store.max_staleness): while it may not, a cached decision is not used,
// and the Check is evaluated, which denies as the built-ins fail, so that
// no cached allow outlives the point where uncached decisions deny.
func WithCurrent(current func(now time.Time) bool) Option {
	return func(s *Server) { s.current = current }
}

// WithFailureHook gives a function to call when the server stops serving by
// itself (its listener failed), not through Stop: the pat plugin turns it
// into an ERROR status.
func WithFailureHook(failed func(error)) Option {
	return func(s *Server) { s.failed = failed }
}

// New returns a gate for manager with a configuration from ParseConfig. It
// registers its metrics on the manager's Prometheus registry and a trigger
// that re-prepares the decision query when a bundle or policy activates.
func New(manager *plugins.Manager, cfg *Config, opts ...Option) *Server {
	s := &Server{
		manager: manager,
		cfg:     cfg,
		logger:  manager.Logger().WithFields(logField),
		metrics: newMetrics(manager.PrometheusRegister()),
	}
	for _, o := range opts {
		o(s)
	}
	if cfg.cacheTTL > 0 {
		s.cache = newDecisionCache(cfg.cacheTTL, cfg.DecisionCache.MaxEntries, s.version)
	}
	manager.RegisterCompilerTrigger(func(storage.Transaction) {
		s.gen.Add(1)
		s.pq.Store(nil)
		s.InvalidateCache()
	})
	return s
}

// Config returns the server's configuration.
func (s *Server) Config() *Config { return s.cfg }

// Start binds the configured address and serves in the background. It
// returns once the listener is bound (the server then answers), or the
// error that prevented it.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grpc != nil {
		return nil
	}
	lis, err := listen(ctx, s.cfg)
	if err != nil {
		return fmt.Errorf("ext_authz: listening on %q: %w", s.cfg.Addr, err)
	}
	if _, err := s.preparedQuery(ctx); err != nil {
		// Not fatal: a bundle may not have arrived yet. Checks deny until it does.
		s.logger.Debug("Decision query not prepared yet: %v.", err)
	}

	if s.cache != nil {
		// Data written to OPA's store (a bundle's data, the REST API) can
		// change decisions: drop the cached ones.
		err := storage.Txn(ctx, s.manager.Store, storage.WriteParams, func(txn storage.Transaction) error {
			h, err := s.manager.Store.Register(ctx, txn, storage.TriggerConfig{
				OnCommit: func(context.Context, storage.Transaction, storage.TriggerEvent) { s.InvalidateCache() },
			})
			s.trigger = h
			return err
		})
		if err != nil {
			lis.Close()
			return fmt.Errorf("ext_authz: watching the store: %w", err)
		}
	}

	gs := grpc.NewServer(
		grpc.MaxRecvMsgSize(s.cfg.GRPCMaxRecvMsgSize),
		// Checks run on long-lived workers rather than a goroutine per call: an
		// evaluation recurses deeply, and a fresh goroutine pays for growing its
		// stack every time (~15% of the CPU at 64 concurrent checks).
		grpc.NumStreamWorkers(uint32(max(32, 8*runtime.GOMAXPROCS(0)))),
		// Check requests are read straight from the wire (wire.go).
		grpc.ForceServerCodecV2(newCheckCodec()),
		// Fixed flow-control windows, as Envoy's own: grpc-go otherwise
		// probes the bandwidth with a PING after the data it receives,
		// and each probe is a round trip that wakes both ends. A Check is
		// a few hundred bytes over loopback or a LAN; there is nothing to
		// probe for.
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(connWindow),
	)
	gs.RegisterService(&checkService, s)
	hs := newHealthService()
	healthpb.RegisterHealthServer(gs, hs)

	// Connections read and write with raw system calls (package rawio).
	lis = rawio.Listener(lis)
	s.grpc, s.health, s.lis, s.done = gs, hs, lis, make(chan struct{})
	s.serving.Store(true)
	go func(done chan struct{}) {
		defer close(done)
		err := gs.Serve(lis)
		s.serving.Store(false)
		if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.logger.Error("ext_authz gRPC server stopped: %v.", err)
			if s.failed != nil {
				s.failed(err)
			}
		}
	}(s.done)
	s.logger.Info("ext_authz gRPC server listening on %s, deciding with %s (GOMAXPROCS %d, GOGC %s).", target(lis.Addr()), s.cfg.Path, runtime.GOMAXPROCS(0), gogc())
	return nil
}

// Addr is the address the server listens on, as a gRPC client dials it
// (host:port, or unix:///path for a socket; "" when it does not serve);
// with port 0 in the configuration it tells the port chosen.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lis == nil {
		return ""
	}
	return target(s.lis.Addr())
}

// target writes a as a gRPC target: host:port, or unix:///absolute/path.
func target(a net.Addr) string {
	if a.Network() != "unix" {
		return a.String()
	}
	path := a.String()
	if filepath.IsAbs(path) {
		return "unix://" + path
	}
	return "unix:" + path
}

// Serving reports whether the server accepts Check calls.
func (s *Server) Serving() bool { return s.serving.Load() }

// Stop reports NOT_SERVING on the health service, ends its Watch streams
// (each once it has sent NOT_SERVING: GracefulStop would wait for them), lets
// the checks in flight finish (up to shutdown_timeout or ctx's deadline) and
// closes the listener.
func (s *Server) Stop(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grpc == nil {
		return
	}
	if ctx.Err() != nil {
		// OPA stops its plugins with a context that is already canceled
		// when a signal ends the process: the drain below would end before
		// it began, cutting off Checks in flight and the health watchers'
		// NOT_SERVING. The shutdown timeout bounds it instead.
		ctx = context.WithoutCancel(ctx)
	}
	s.health.drain()
	s.serving.Store(false)
	// The goroutine gets its own reference: s.grpc is cleared below, maybe
	// before GracefulStop runs when the timeout forced the stop.
	g := s.grpc
	stopped := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(s.cfg.shutdownTimeout)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		g.Stop()
	case <-ctx.Done():
		g.Stop()
	}
	<-s.done
	if s.trigger != nil {
		_ = storage.Txn(ctx, s.manager.Store, storage.WriteParams, func(txn storage.Transaction) error {
			s.trigger.Unregister(ctx, txn)
			return nil
		})
		s.trigger = nil
	}
	s.grpc, s.health, s.lis = nil, nil, nil
	s.logger.Info("ext_authz gRPC server stopped.")
}

// preparedQuery returns the prepared decision query, preparing it against
// the current compiler when a compiler change dropped it.
func (s *Server) preparedQuery(ctx context.Context) (*rego.PreparedEvalQuery, error) {
	if pq := s.pq.Load(); pq != nil {
		return pq, nil
	}
	s.prepMu.Lock()
	defer s.prepMu.Unlock()
	if pq := s.pq.Load(); pq != nil {
		return pq, nil
	}
	gen := s.gen.Load()
	pq, err := rego.New(
		rego.ParsedQuery(s.cfg.query),
		rego.Compiler(s.manager.GetCompiler()),
		rego.Store(s.manager.Store),
		rego.Runtime(s.manager.Info),
		rego.EnablePrintStatements(s.manager.EnablePrintStatements()),
		rego.PrintHook(s.manager.PrintHook()),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, err
	}
	if s.gen.Load() == gen {
		s.pq.Store(&pq)
	}
	return &pq, nil
}

// noMetrics spares each evaluation a fresh metrics registry (the gate has
// its own Prometheus metrics).
var noMetrics = opametrics.NoOp()

// resultTerm keeps the decision as an AST term: the response is built from
// it directly, without a conversion to Go values.
func resultTerm(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

// Check answers one Envoy ext_authz request. It never returns an error: a
// request that cannot be decided is denied (400 for an undecodable path,
// 500 otherwise, with a body that tells nothing of the cause) and counted.
// The gRPC server does not call it: its codec decodes requests straight
// from the wire (wire.go) and calls check.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return s.check(ctx, fromMessage(req)), nil
}

// check answers a Check with the answer as a message.
func (s *Server) check(ctx context.Context, in *checkInput) *authv3.CheckResponse {
	resp, wire := s.checkWire(ctx, in)
	if resp == nil {
		resp = decodeAnswer(wire)
	}
	return resp
}

func (s *Server) undecodable() { s.metrics.failure(reasonDecode) }

// checkWire answers a Check: with the answer as a message, or encoded (an
// answer shared through the decision cache, which gRPC then sends as it is).
func (s *Server) checkWire(ctx context.Context, in *checkInput) (*authv3.CheckResponse, *encodedAnswer) {
	growStack(0) // stack.go
	start := time.Now()
	headers := in.http.headers

	var (
		key     [32]byte
		gen     cacheGen
		decided ast.Value
	)
	dl := logs.Lookup(s.manager)
	var shared, fresh bool
	if s.cache != nil {
		// The answer to an allowed request lists the client's x-pat-*
		// headers for removal, and a logged decision carries its id: only
		// other answers are shared through the cache.
		shared = dl == nil && !hasPatHeaders(headers)
		key = cacheKey(in.http.method, in.http.path, headers.get("authorization"), methodOverrides(headers), requestBody(in.http.payload(), headers))
		gen = s.cache.generation()
		fresh = s.isCurrent(start)
		if e, ok := s.cache.get(key, start); ok && fresh {
			if e.wire != nil && dl == nil {
				s.metrics.hit.Inc()
				s.metrics.observe(e.out, false, time.Since(start).Seconds())
				if !shared {
					return withClientPatHeaders(decodeAnswer(e.wire), headers), nil
				}
				return nil, e.wire
			}
			decided = e.out.decision // nil when the entry kept only an answer: decided anew
		}
		// A hit answers without an evaluation; an entry that kept only
		// an answer, met by a Check to be logged, is evaluated: a miss.
		if decided != nil {
			s.metrics.hit.Inc()
		} else {
			s.metrics.miss.Inc()
		}
	}

	var input ast.Object
	if decided == nil || dl != nil {
		var err error
		if input, err = in.build(); err != nil {
			s.metrics.failure(reasonBadRequest)
			s.metrics.observe(outcome{status: 400}, true, time.Since(start).Seconds())
			return errorResponse(400, code.Code_INVALID_ARGUMENT, "Bad Request"), nil
		}
	}

	var requestID string
	if dl != nil {
		requestID = loggedRequestID(in.http.id, headers)
	}
	resp, out, reason, err := s.decide(ctx, start, input, headers, decided, dl, requestID)
	if reason != "" {
		s.metrics.failure(reason)
		s.logger.Error("ext_authz check failed (%s): %v.", reason, err)
		resp, out = errorResponse(500, code.Code_INTERNAL, "Internal Server Error"), outcome{status: 500}
	} else if s.cache != nil && decided == nil && fresh && s.isCurrent(time.Now()) {
		// Not a decision made while the built-ins did not answer (before
		// or after the evaluation): that denial would outlive the outage.
		var wire *encodedAnswer
		if shared {
			// Encoded once: for the cache and for this answer.
			if b, err := proto.Marshal(resp); err == nil {
				wire = &encodedAnswer{b}
			}
		}
		s.cache.put(key, out, wire, gen, start)
		if wire != nil {
			s.metrics.observe(out, false, time.Since(start).Seconds())
			return nil, wire
		}
	}
	s.metrics.observe(out, reason != "", time.Since(start).Seconds())
	return resp, nil
}

// isCurrent reports whether what the built-ins answer from is current at
// now (WithCurrent).
func (s *Server) isCurrent(now time.Time) bool { return s.current == nil || s.current(now) }

// InvalidateCache drops every cached decision. The pat plugin calls it when
// its token index applies a change; policy, bundle and data changes in OPA's
// store invalidate the cache by themselves.
func (s *Server) InvalidateCache() {
	if s.cache != nil {
		s.cache.Invalidate()
	}
}

// decide evaluates the decision (unless the cache gave one) and builds the
// answer; reason is set when that failed.
func (s *Server) decide(ctx context.Context, start time.Time, input ast.Object, headers headerList,
	decision ast.Value, dl *logs.Plugin, requestID string,
) (*authv3.CheckResponse, outcome, string, error) {
	if decision != nil && dl == nil {
		// A cached decision, nothing to log: no transaction needed.
		resp, out, err := buildResponse(decision, headers)
		if err != nil {
			return nil, outcome{}, reasonDecision, err
		}
		out.decision = decision
		return resp, out, "", nil
	}

	store := s.manager.Store
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, outcome{}, reasonEvaluation, err
	}
	defer store.Abort(ctx, txn)

	if decision == nil {
		pq, err := s.preparedQuery(ctx)
		if err != nil {
			return nil, outcome{}, reasonPrepare, err
		}
		rs, err := pq.Eval(ctx,
			rego.EvalParsedInput(input),
			rego.EvalTransaction(txn),
			rego.EvalGenerateJSON(resultTerm),
			rego.EvalMetrics(noMetrics),
		)
		if err != nil {
			return s.finish(ctx, nil, outcome{}, reasonEvaluation, err, dl, txn, start, input, nil, requestID)
		}
		if len(rs) > 0 && len(rs[0].Expressions) > 0 {
			if t, ok := rs[0].Expressions[0].Value.(*ast.Term); ok {
				decision = t.Value
			}
		}
		if decision == nil {
			return s.finish(ctx, nil, outcome{}, reasonUndefined, ErrUndefinedDecision, dl, txn, start, input, nil, requestID)
		}
	}
	resp, out, err := buildResponse(decision, headers)
	if err != nil {
		return s.finish(ctx, nil, outcome{}, reasonDecision, err, dl, txn, start, input, decision, requestID)
	}
	out.decision = decision
	return s.finish(ctx, resp, out, "", nil, dl, txn, start, input, decision, requestID)
}

// finish sends the decision to the decision log (when one is configured).
func (s *Server) finish(ctx context.Context, resp *authv3.CheckResponse, out outcome, reason string, evalErr error,
	dl *logs.Plugin, txn storage.Transaction, start time.Time, input ast.Object, decision ast.Value, requestID string,
) (*authv3.CheckResponse, outcome, string, error) {
	if dl == nil {
		return resp, out, reason, evalErr
	}
	id := uuid.NewString()
	if resp != nil {
		resp.DynamicMetadata = withDecisionID(resp.DynamicMetadata, id)
	}
	if err := s.logDecision(ctx, dl, txn, id, start, input, decision, evalErr, requestID); err != nil {
		s.metrics.failure(reasonDecisionLog)
		s.logger.Error("Decision log failed: %v.", err)
	}
	return resp, out, reason, evalErr
}

// withDecisionID adds the decision id to the dynamic metadata Envoy keeps
// with the request, so access logs can point at the decision log.
func withDecisionID(md *structpb.Struct, id string) *structpb.Struct {
	if md == nil {
		md = &structpb.Struct{Fields: map[string]*structpb.Value{}}
	}
	if md.Fields == nil {
		md.Fields = map[string]*structpb.Value{}
	}
	md.Fields["decision_id"] = structpb.NewStringValue(id)
	return md
}

// logDecision hands the decision to OPA's decision logger, which applies
// the mask policy (data.system.log.mask) before anything leaves the process.
func (s *Server) logDecision(ctx context.Context, dl *logs.Plugin, txn storage.Transaction, id string, start time.Time,
	input ast.Object, decision ast.Value, evalErr error, requestID string,
) error {
	goInput, err := ast.JSON(input)
	if err != nil {
		return err
	}
	info := &server.Info{
		Txn:        txn,
		DecisionID: id,
		Path:       s.cfg.Path,
		Timestamp:  start,
		Input:      &goInput,
		InputAST:   input,
		Error:      evalErr,
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		info.RemoteAddr = p.Addr.String()
	}
	if requestID != "" {
		info.Custom = map[string]any{"request_id": requestID}
	}
	if decision != nil {
		result, err := ast.JSON(decision)
		if err != nil {
			return err
		}
		info.Results = &result
	}
	if names, err := bundle.ReadBundleNamesFromStore(ctx, s.manager.Store, txn); err == nil && len(names) > 0 {
		info.Bundles = make(map[string]server.BundleInfo, len(names))
		for _, name := range names {
			rev, _ := bundle.ReadBundleRevisionFromStore(ctx, s.manager.Store, txn, name)
			info.Bundles[name] = server.BundleInfo{Revision: rev}
		}
	}
	return dl.Log(ctx, info)
}

// gogc is the collector's GOGC as the runtime has it ("off" when it is
// off), read without setting it.
func gogc() string {
	sample := []runtimemetrics.Sample{{Name: "/gc/gogc:percent"}}
	runtimemetrics.Read(sample)
	if sample[0].Value.Kind() != runtimemetrics.KindUint64 {
		return "unknown"
	}
	// The runtime keeps GOGC as an int32, off as -1, and gives it as a
	// uint64.
	percent := int32(sample[0].Value.Uint64())
	if percent < 0 {
		return "off"
	}
	return strconv.Itoa(int(percent))
}
