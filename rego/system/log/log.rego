# METADATA
# title: Decision-log mask
# description: >-
#   Keeps credentials out of OPA's decision logs: the token of a direct query, and every
#   credential an Envoy ext_authz input can carry (Authorization and similar headers, cookies,
#   tokens in the query string), and the raw tokens the non-deterministic built-in cache records.
package system.log

_http := input.input.attributes.request.http

# Headers that carry credentials, by lower-case name.
_credential_headers := {
	"authorization",
	"cookie",
	"private-token",
	"proxy-authorization",
	"x-access-token",
	"x-api-key",
	"x-auth-token",
	"x-github-token",
}

# Query parameters that carry credentials: access_token, private_token, token, and any other
# name that holds "token" in any case and form (access_token[], ACCESS_TOKEN, id_token): a
# mask that redacts one parameter too many costs nothing.
_credential_param(name) if contains(lower(name), "token")

# METADATA
# description: >-
#   JSON pointers (or upsert operations) removing credentials from a decision-log event before
#   it is printed or sent anywhere.
mask contains "/input/credential/token" if input.input.credential.token

mask contains sprintf("/input/attributes/request/http/headers/%s", [name]) if {
	some name, _ in _http.headers
	lower(name) in _credential_headers
}

# Raw headers (Envoy's encode_raw_headers) as another input builder may keep them.
mask contains "/input/attributes/request/http/headerMap" if _http.headerMap

mask contains sprintf("/input/parsed_query/%s", [name]) if {
	some name, _ in input.input.parsed_query
	_credential_param(name)
}

mask contains {"op": "upsert", "path": "/input/attributes/request/http/path", "value": redacted} if {
	redacted := _redacted(_http.path)
}

# Envoy repeats the path, query included, in the :path pseudo-header.
mask contains {"op": "upsert", "path": "/input/attributes/request/http/headers/:path", "value": redacted} if {
	redacted := _redacted(_http.headers[":path"])
}

# A request target without its query, when the query carries a credential.
_redacted(target) := concat("", [substring(target, 0, i), "?[redacted]"]) if {
	i := indexof(target, "?")
	i >= 0
	_credential_query(substring(target, i + 1, -1))
}

# Pairs are split at "&" and at ";", which some servers also take as a separator (and which
# leaves the parsed query empty: Go's parser drops such pairs).
_credential_query(query) if {
	some pair in regex.split(`[&;]`, query)
	_credential_param(split(pair, "=")[0])
}

# A name written with percent escapes (access%5Ftoken) may spell one: the input's parsed
# query has it decoded, and any escaped name redacts the query, since an escape can hide one.
_credential_query(_) if {
	some name, _ in input.input.parsed_query
	_credential_param(name)
}

_credential_query(query) if {
	some pair in regex.split(`[&;]`, query)
	contains(split(pair, "=")[0], "%")
}

# pat.token's argument is the raw token: never log that cache entry.
mask contains "/nd_builtin_cache/pat.token" if input.nd_builtin_cache["pat.token"]
