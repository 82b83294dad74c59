package extauthz

import (
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		note    string
		raw     string
		want    Config
		wantErr string
	}{
		{
			note: "defaults",
			raw:  `{"addr": "127.0.0.1:9191"}`,
			want: Config{
				Addr: "127.0.0.1:9191", Path: DefaultPath, GRPCMaxRecvMsgSize: defaultMaxRecvMsgSize, shutdownTimeout: defaultShutdownTimeout,
				DecisionCache: &CacheConfig{MaxEntries: defaultCacheEntries}, cacheTTL: defaultCacheTTL,
			},
		},
		{
			note: "cache off",
			raw:  `{"addr": "127.0.0.1:9191", "decision_cache": {"ttl": "0s"}}`,
			want: Config{
				Addr: "127.0.0.1:9191", Path: DefaultPath, GRPCMaxRecvMsgSize: defaultMaxRecvMsgSize, shutdownTimeout: defaultShutdownTimeout,
				DecisionCache: &CacheConfig{TTL: "0s", MaxEntries: defaultCacheEntries},
			},
		},
		{
			note: "another path: no cache unless asked",
			raw:  `{"addr": "127.0.0.1:9191", "path": "envoy/authz/allow"}`,
			want: Config{Addr: "127.0.0.1:9191", Path: "envoy/authz/allow", GRPCMaxRecvMsgSize: defaultMaxRecvMsgSize, shutdownTimeout: defaultShutdownTimeout},
		},
		{note: "negative cache ttl", raw: `{"addr": ":1", "decision_cache": {"ttl": "-1s"}}`, wantErr: `invalid configuration for ext_authz: ext_authz.decision_cache.ttl: "-1s" is negative; give a duration such as "1s", or "0s" to turn the cache off`},
		{note: "bad cache ttl", raw: `{"addr": ":1", "decision_cache": {"ttl": "soon"}}`, wantErr: `invalid configuration for ext_authz: ext_authz.decision_cache.ttl: "soon" is not a duration such as "1s"`},
		{note: "negative timeout", raw: `{"addr": ":1", "shutdown_timeout": "-5s"}`, wantErr: `invalid configuration for ext_authz: ext_authz.shutdown_timeout: "-5s" is negative; give 0s or more, such as "5s"`},
		{note: "negative cache size", raw: `{"addr": ":1", "decision_cache": {"max_entries": -5}}`, wantErr: `invalid configuration for ext_authz: ext_authz.decision_cache.max_entries: -5 is negative`},
		{
			note: "yaml, every key",
			raw:  "addr: ':9191'\npath: data.pat.envoy.response\nshutdown_timeout: 250ms\ngrpc_max_recv_msg_size: 1024\n",
			want: Config{Addr: ":9191", Path: "data.pat.envoy.response", ShutdownTimeout: "250ms", GRPCMaxRecvMsgSize: 1024, shutdownTimeout: 250 * time.Millisecond},
		},
		{note: "missing addr", raw: `{}`, wantErr: `invalid configuration for ext_authz: ext_authz.addr: missing value (host:port such as "127.0.0.1:9191", or unix:///path/to/socket)`},
		{note: "addr without port", raw: `{"addr": "localhost"}`, wantErr: `invalid configuration for ext_authz: ext_authz.addr: "localhost" is not host:port, or unix:///path/to/socket`},
		{
			note: "unix socket, absolute",
			raw:  `{"addr": "unix:///run/opa-pat/gate.sock", "socket_mode": "0660"}`,
			want: Config{
				Addr: "unix:///run/opa-pat/gate.sock", SocketMode: "0660", Path: DefaultPath, GRPCMaxRecvMsgSize: defaultMaxRecvMsgSize, shutdownTimeout: defaultShutdownTimeout,
				DecisionCache: &CacheConfig{MaxEntries: defaultCacheEntries}, cacheTTL: defaultCacheTTL,
				network: "unix", address: "/run/opa-pat/gate.sock", socketMode: 0o660,
			},
		},
		{
			note: "unix socket, relative",
			raw:  `{"addr": "unix:run/../gate.sock", "decision_cache": {"ttl": "0s"}}`,
			want: Config{
				Addr: "unix:run/../gate.sock", Path: DefaultPath, GRPCMaxRecvMsgSize: defaultMaxRecvMsgSize, shutdownTimeout: defaultShutdownTimeout,
				DecisionCache: &CacheConfig{TTL: "0s", MaxEntries: defaultCacheEntries},
				network:       "unix", address: "gate.sock",
			},
		},
		{note: "unix with a host", raw: `{"addr": "unix://run/gate.sock"}`, wantErr: `invalid configuration for ext_authz: ext_authz.addr: "unix://run/gate.sock" names no absolute path; write unix:///absolute/path or unix:relative/path`},
		{note: "unix without a path", raw: `{"addr": "unix:"}`, wantErr: `invalid configuration for ext_authz: ext_authz.addr: "unix:" names no socket file`},
		{note: "abstract socket", raw: `{"addr": "unix:@gate"}`, wantErr: `invalid configuration for ext_authz: ext_authz.addr: "unix:@gate" is an abstract socket; give a socket file's path`},
		{note: "unix directory", raw: `{"addr": "unix:///run/"}`, wantErr: `invalid configuration for ext_authz: ext_authz.addr: "unix:///run/" names no socket file`},
		{note: "bad socket mode", raw: `{"addr": "unix:///run/gate.sock", "socket_mode": "rw-rw----"}`, wantErr: `invalid configuration for ext_authz: ext_authz.socket_mode: "rw-rw----" is not permissions in octal such as "0660"`},
		{note: "socket mode beyond permissions", raw: `{"addr": "unix:///run/gate.sock", "socket_mode": "4777"}`, wantErr: `invalid configuration for ext_authz: ext_authz.socket_mode: "4777" is not permissions in octal such as "0660"`},
		{note: "socket mode for nobody", raw: `{"addr": "unix:///run/gate.sock", "socket_mode": "0"}`, wantErr: `invalid configuration for ext_authz: ext_authz.socket_mode: "0" is not permissions in octal such as "0660"`},
		{note: "socket mode on tcp", raw: `{"addr": "127.0.0.1:9191", "socket_mode": "0660"}`, wantErr: `invalid configuration for ext_authz: ext_authz.socket_mode: "0660" is for a Unix socket, and addr "127.0.0.1:9191" is not one`},
		{note: "bad path", raw: `{"addr": ":1", "path": "pat//envoy"}`, wantErr: `invalid configuration for ext_authz: ext_authz.path: "pat//envoy": has an empty segment`},
		{note: "data only", raw: `{"addr": ":1", "path": "data"}`, wantErr: `invalid configuration for ext_authz: ext_authz.path: "data": names no decision`},
		{note: "bad dotted path", raw: `{"addr": ":1", "path": "pat.envoy[1"}`, wantErr: `invalid configuration for ext_authz: ext_authz.path: "pat.envoy[1": is not a path such as pat/envoy/response`},
		{note: "bad timeout", raw: `{"addr": ":1", "shutdown_timeout": "soon"}`, wantErr: `invalid configuration for ext_authz: ext_authz.shutdown_timeout: "soon" is not a duration such as "5s"`},
		{note: "negative size", raw: `{"addr": ":1", "grpc_max_recv_msg_size": -1}`, wantErr: `invalid configuration for ext_authz: ext_authz.grpc_max_recv_msg_size: -1 is negative`},
		{note: "not an object", raw: `[1]`, wantErr: `invalid configuration for ext_authz: ext_authz: an array where an object belongs`},
		{note: "mistyped key", raw: `{"addr": ":1", "shutdown_timout": "30s"}`, wantErr: `invalid configuration for ext_authz: ext_authz: unknown key "shutdown_timout" (known: addr, decision_cache, grpc_max_recv_msg_size, path, shutdown_timeout, socket_mode)`},
		{note: "mistyped cache key", raw: `{"addr": ":1", "decision_cache": {"ttl": "0s", "max_entry": 5}}`, wantErr: `invalid configuration for ext_authz: ext_authz.decision_cache: unknown key "max_entry" (known: max_entries, ttl)`},
		{note: "timeout of the wrong type", raw: `{"addr": ":1", "shutdown_timeout": 30}`, wantErr: `invalid configuration for ext_authz: ext_authz.shutdown_timeout: a number where a string belongs`},
	}
	for _, tc := range tests {
		t.Run(tc.note, func(t *testing.T) {
			got, err := ParseConfig([]byte(tc.raw))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error: got %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.query = nil
			if tc.want.network == "" {
				tc.want.network, tc.want.address = "tcp", tc.want.Addr
			}
			if !got.Equal(&tc.want) || got.ShutdownTimeout != tc.want.ShutdownTimeout || got.SocketMode != tc.want.SocketMode ||
				got.network != tc.want.network || got.address != tc.want.address {
				t.Fatalf("got %+v, want %+v", *got, tc.want)
			}
		})
	}
}

func TestParseConfigQuery(t *testing.T) {
	for _, path := range []string{"pat/envoy/response", "/pat/envoy/response", "data.pat.envoy.response", "pat.envoy.response"} {
		t.Run(path, func(t *testing.T) {
			c, err := ParseConfig([]byte(`{"addr": ":1", "path": "` + path + `"}`))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.query.String(); got != "data.pat.envoy.response" {
				t.Fatalf("query: got %s", got)
			}
		})
	}
}
