// Package extauthz is opa-pat's Envoy gate: a gRPC server implementing
// envoy.service.auth.v3.Authorization/Check. It turns each CheckRequest into
// the input opa-envoy-plugin builds (input.attributes.request.http...,
// input.parsed_path, input.parsed_query), evaluates the configured decision
// (by default data.pat.envoy.response) through a prepared query, and turns the
// answer into a CheckResponse. The pat plugin starts it when
// plugins.pat.ext_authz is configured.
package extauthz

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/opa-pat/opa-pat/plugin/cfgkeys"
)

// Defaults.
const (
	DefaultPath            = "pat/envoy/response"
	defaultShutdownTimeout = 5 * time.Second
	defaultMaxRecvMsgSize  = 4 << 20
	defaultCacheTTL        = 5 * time.Second
	defaultCacheEntries    = 100_000
)

// ErrInvalidConfig wraps every configuration error.
var ErrInvalidConfig = errors.New("invalid configuration for ext_authz")

// Config is plugins.pat.ext_authz:
//
//	ext_authz:
//	  addr: 127.0.0.1:9191        # required: host:port, or unix:///path/to/socket
//	  socket_mode: "0660"         # a Unix socket's permissions (default: the umask's)
//	  path: pat/envoy/response    # the decision to evaluate
//	  shutdown_timeout: 5s        # how long Stop waits for checks in flight
//	  grpc_max_recv_msg_size: 4194304
//	  decision_cache:             # on by default for the default path; ttl 0s turns it off
//	    ttl: 5s
//	    max_entries: 100000
type Config struct {
	Addr               string       `json:"addr"`
	SocketMode         string       `json:"socket_mode"`
	Path               string       `json:"path"`
	ShutdownTimeout    string       `json:"shutdown_timeout"`
	GRPCMaxRecvMsgSize int          `json:"grpc_max_recv_msg_size"`
	DecisionCache      *CacheConfig `json:"decision_cache,omitempty"`

	network, address string // what Listen is given: "tcp" and host:port, or "unix" and a path
	socketMode       os.FileMode
	shutdownTimeout  time.Duration
	cacheTTL         time.Duration // 0: no cache
	query            ast.Body
}

// CacheConfig is ext_authz.decision_cache. The cache keys decisions by
// method, path and Authorization header: right for data.pat.envoy, which
// reads nothing else; a policy at another path that reads more must leave
// it off (the default there).
type CacheConfig struct {
	TTL        string `json:"ttl"`
	MaxEntries int    `json:"max_entries"`
}

// ParseConfig reads plugins.pat.ext_authz (JSON or YAML), checks it and fills
// in the defaults. Errors name the key and quote the value.
func ParseConfig(raw []byte) (*Config, error) {
	var c Config
	if err := cfgkeys.Decode(raw, &c, "ext_authz"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := c.validateAndInjectDefaults(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return &c, nil
}

func (c *Config) validateAndInjectDefaults() error {
	if err := c.validateAddr(); err != nil {
		return err
	}

	if c.Path == "" {
		c.Path = DefaultPath
	}
	query, err := pathQuery(c.Path)
	if err != nil {
		return fmt.Errorf("ext_authz.path: %q: %w", c.Path, err)
	}
	c.query = query

	c.shutdownTimeout = defaultShutdownTimeout
	if c.ShutdownTimeout != "" {
		d, err := time.ParseDuration(c.ShutdownTimeout)
		if err != nil {
			return fmt.Errorf("ext_authz.shutdown_timeout: %q is not a duration such as \"5s\"", c.ShutdownTimeout)
		}
		if d < 0 {
			return fmt.Errorf("ext_authz.shutdown_timeout: %q is negative; give 0s or more, such as \"5s\"", c.ShutdownTimeout)
		}
		c.shutdownTimeout = d
	}

	if err := c.validateCache(); err != nil {
		return err
	}

	switch {
	case c.GRPCMaxRecvMsgSize == 0:
		c.GRPCMaxRecvMsgSize = defaultMaxRecvMsgSize
	case c.GRPCMaxRecvMsgSize < 0:
		return fmt.Errorf("ext_authz.grpc_max_recv_msg_size: %d is negative", c.GRPCMaxRecvMsgSize)
	}
	return nil
}

// validateAddr reads addr: host:port, or a Unix socket as gRPC and
// opa-envoy-plugin write it, unix:///absolute/path or unix:relative/path:
// a sidecar beside Envoy in the same pod or host then listens on nothing
// the network reaches (docs/envoy.md, "On a Unix socket").
func (c *Config) validateAddr() error {
	if c.Addr == "" {
		return errors.New(`ext_authz.addr: missing value (host:port such as "127.0.0.1:9191", or unix:///path/to/socket)`)
	}
	path, isUnix := strings.CutPrefix(c.Addr, "unix:")
	if !isUnix {
		if c.SocketMode != "" {
			return fmt.Errorf("ext_authz.socket_mode: %q is for a Unix socket, and addr %q is not one", c.SocketMode, c.Addr)
		}
		if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
			return fmt.Errorf("ext_authz.addr: %q is not host:port, or unix:///path/to/socket", c.Addr)
		}
		c.network, c.address = "tcp", c.Addr
		return nil
	}
	if rest, ok := strings.CutPrefix(path, "//"); ok {
		// unix://host/... has no meaning for a socket: the path after the
		// two slashes must be absolute.
		if !strings.HasPrefix(rest, "/") {
			return fmt.Errorf("ext_authz.addr: %q names no absolute path; write unix:///absolute/path or unix:relative/path", c.Addr)
		}
		path = rest
	}
	if path == "" || strings.HasSuffix(path, "/") {
		return fmt.Errorf("ext_authz.addr: %q names no socket file", c.Addr)
	}
	if strings.HasPrefix(path, "@") {
		// Go would bind Linux's abstract namespace, which has no file to
		// give a mode or to find left behind; a path is asked for.
		return fmt.Errorf("ext_authz.addr: %q is an abstract socket; give a socket file's path", c.Addr)
	}
	c.network, c.address = "unix", filepath.Clean(path)
	if len(c.address) > maxSocketPath {
		return fmt.Errorf("ext_authz.addr: %q is %d bytes; a Unix socket path holds at most %d", c.Addr, len(c.address), maxSocketPath)
	}
	if c.SocketMode != "" {
		mode, err := strconv.ParseUint(c.SocketMode, 8, 32)
		if err != nil || mode == 0 || mode > 0o777 {
			return fmt.Errorf("ext_authz.socket_mode: %q is not permissions in octal such as \"0660\"", c.SocketMode)
		}
		c.socketMode = os.FileMode(mode)
	}
	return nil
}

func (c *Config) validateCache() error {
	if c.DecisionCache == nil {
		if c.Path != DefaultPath {
			return nil
		}
		c.DecisionCache = &CacheConfig{}
	}
	dc := c.DecisionCache
	c.cacheTTL = defaultCacheTTL
	if dc.TTL != "" {
		d, err := time.ParseDuration(dc.TTL)
		if err != nil {
			return fmt.Errorf("ext_authz.decision_cache.ttl: %q is not a duration such as \"1s\"", dc.TTL)
		}
		if d < 0 {
			return fmt.Errorf("ext_authz.decision_cache.ttl: %q is negative; give a duration such as \"1s\", or \"0s\" to turn the cache off", dc.TTL)
		}
		c.cacheTTL = d
	}
	switch {
	case dc.MaxEntries == 0:
		dc.MaxEntries = defaultCacheEntries
	case dc.MaxEntries < 0:
		return fmt.Errorf("ext_authz.decision_cache.max_entries: %d is negative", dc.MaxEntries)
	}
	return nil
}

// pathQuery turns "pat/envoy/response" (or "data.pat.envoy.response") into
// the query data.pat.envoy.response.
func pathQuery(path string) (ast.Body, error) {
	p := strings.Trim(path, "/")
	p = strings.TrimPrefix(p, "data.")
	p = strings.TrimPrefix(p, "data/")
	if p == "" || p == "data" {
		return nil, errors.New("names no decision")
	}
	var ref ast.Ref
	if strings.Contains(p, "/") {
		ref = ast.Ref{ast.DefaultRootDocument}
		for seg := range strings.SplitSeq(p, "/") {
			if seg == "" {
				return nil, errors.New("has an empty segment")
			}
			ref = append(ref, ast.StringTerm(seg))
		}
	} else {
		r, err := ast.ParseRef("data." + p)
		if err != nil {
			return nil, errors.New("is not a path such as pat/envoy/response")
		}
		ref = r
	}
	return ast.NewBody(ast.NewExpr(ast.NewTerm(ref))), nil
}

// Equal reports whether two configurations are the same (Reconfigure returns
// early when nothing changed).
func (c *Config) Equal(o *Config) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.Addr == o.Addr && c.socketMode == o.socketMode && c.Path == o.Path && c.shutdownTimeout == o.shutdownTimeout &&
		c.GRPCMaxRecvMsgSize == o.GRPCMaxRecvMsgSize && c.cacheTTL == o.cacheTTL &&
		c.cacheEntries() == o.cacheEntries()
}

func (c *Config) cacheEntries() int {
	if c.DecisionCache == nil {
		return 0
	}
	return c.DecisionCache.MaxEntries
}
