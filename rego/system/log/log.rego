# METADATA
# title: Decision-log mask
# description: >-
#   Keeps credentials out of OPA's decision logs: the token of a direct query, and every
#   credential an Envoy ext_authz input can carry (Authorization and similar headers, cookies,
#   tokens in the query string), and the raw tokens the non-deterministic built-in cache records.
package system.log

_http := input.input.attributes.request.http

# Headers that carry credentials, by lower-case name: those with a scheme (Authorization, and
# where proxies move it: Google's ESPv2 and API Gateway to X-Forwarded-Authorization, Amazon's
# API Gateway to X-Amzn-Remapped-Authorization), those that are a credential, and cookies.
_credential_headers := (_scheme_headers | _value_headers) | {"cookie"}

_scheme_headers := {
	"authorization",
	"proxy-authorization",
	"x-amzn-remapped-authorization",
	"x-forwarded-authorization",
}

_value_headers := {
	"private-token",
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
#   it is printed or sent anywhere: those of the fields that carry them (_named), and any other
#   token-shaped string of the input or the result (_shaped).
mask contains m if some m in _named

mask contains m if some m in _shaped

_named contains "/input/credential/token" if input.input.credential.token

_named contains sprintf("/input/attributes/request/http/headers/%s", [name]) if {
	some name, _ in _http.headers
	lower(name) in _credential_headers
}

# Raw headers (Envoy's encode_raw_headers) as another input builder may keep them.
_named contains "/input/attributes/request/http/headerMap" if _http.headerMap

_named contains sprintf("/input/parsed_query/%s", [name]) if {
	some name, _ in input.input.parsed_query
	_credential_param(name)
	not _secret(name) # a pointer would log it: the parsed query is erased whole (below)
}

_named contains {"op": "upsert", "path": "/input/attributes/request/http/path", "value": redacted} if {
	redacted := _redacted(_http.path)
}

# Envoy repeats the path, query included, in the :path pseudo-header.
_named contains {"op": "upsert", "path": "/input/attributes/request/http/headers/:path", "value": redacted} if {
	redacted := _redacted(_http.headers[":path"])
}

# A request target without its query, when the query carries a credential. The path before the
# query is kept unless it holds a secret itself: this upsert is the only one of the field (the
# look for tokens (_shaped) leaves a field that a named rule replaces), so a token in the path
# must go here too.
_redacted(target) := concat("", [_redacted_path(substring(target, 0, i)), "?[redacted]"]) if {
	i := indexof(target, "?")
	i >= 0
	_credential_query(substring(target, i + 1, -1))
}

_redacted_path(path) := "[REDACTED]" if _secret(path)

else := path

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
_named contains "/nd_builtin_cache/pat.token" if input.nd_builtin_cache["pat.token"]

# ---------------------------------------------------------------------------------------------
# A token anywhere else: a client that puts it in the wrong field ("credential": "ghp_..."), a
# header or path of its own, or a query of a whole package (/v1/data/pat), whose result holds the
# policy's private rules, the raw token among them. Each string of the input and the result that
# holds a token, or the event's credential, is replaced; a key the mask cannot address (with "/"
# or characters OPA escapes) erases its whole document.
#
# A key that holds one (a header or query parameter named with a token, a JSON body's key) is
# never pointed at: OPA lists the pointers it applied in the event ("erased", "masked"), which
# would log the key. The object or array that holds it is erased instead, and nothing inside.
_shaped contains {"op": "upsert", "path": pointer, "value": "[REDACTED]"} if {
	some ["value", root, path] in _hits
	not _whole(root)
	_addressable(path)
	not _in_holder(root, path)
	pointer := _pointer(root, path)
	not _covered(pointer)
}

_shaped contains concat("", ["/", root]) if {
	some ["value", root, path] in _hits
	not _whole(root)
	not _addressable(path)
}

_shaped contains _pointer(root, holder) if {
	some [root, holder] in _holders
	not _whole(root)
	_addressable(holder)
	not _in_holder(root, holder)
}

_shaped contains concat("", ["/", root]) if {
	some [root, holder] in _holders
	not _whole(root)
	not _addressable(holder)
}

# OPA logs an ad-hoc query's (/v1/query) result as a typed list that its mask cannot reach into:
# a pointer inside it is skipped without a word, and the token stays. Such a result is replaced
# whole when it holds a secret anywhere.
_shaped contains {"op": "upsert", "path": "/result", "value": "[REDACTED]"} if {
	_whole("result")
	some [_, "result", _] in _hits
}

_whole("result") if input.query

# [root, path] of each object or array with a key that holds a secret.
_holders contains [root, array.slice(path, 0, count(path) - 1)] if some ["key", root, path] in _hits

# Strictly inside a holder, which is erased with all it holds.
_in_holder(root, path) if {
	some [r, holder] in _holders
	r == root
	count(holder) < count(path)
	array.slice(path, 0, count(holder)) == holder
}

# Where the secrets are: [kind, root, path] of each key ("key") and string ("value") that holds
# one. The input of a Check (an event of the gate's decision path with an Envoy input) is searched
# without walking its headers, the most of its strings: each header and each field of the HTTP
# request is looked at once, and everything else (the parsed path, query and body, the peers,
# the TLS session, the context extensions and the metadata, which an Envoy filter may fill from a
# header) is walked. Any other input, a direct decision's or a query's, is small and walked whole.
# A result is walked unless it is one of the policy's answers, whose reasons and messages are
# read (below).
_check if {
	input.path in {"pat/envoy/response", "pat/envoy/allow", "pat/envoy/decision"}
	_http
}

_hits contains [kind, "input", path] if {
	not _check
	walk(input.input, [path, value])
	kind := _holds(path, value)
}

_hits contains [kind, "input", ["attributes", "request", "http", "headers", name]] if {
	_check
	some name, value in _http.headers
	kind := _header_holds(name, value)
}

# What a header of a Check holds: its name ("key", first), its value ("value"), or Basic
# credentials outside the credential headers (which are erased).
_header_holds(name, value) := "key" if {
	_secret(name)
} else := "value" if {
	_secret(value)
} else := "value" if {
	_basic_secret(value)
	not lower(name) in _credential_headers
} else := "value" if {
	# A value that is not a string (a caller of the gate's path through OPA's API may send a
	# header as a list, as Go's http.Header marshals): replaced whole when its JSON text holds
	# a secret.
	not is_string(value)
	_may_hold_secret(value)
}

# The HTTP request's fields but its headers and body bytes: path, host, body, id (x-request-id,
# which Envoy keeps from the client with preserve_external_request_id), method, scheme,
# protocol, query, fragment.
_hits contains ["value", "input", ["attributes", "request", "http", field]] if {
	_check
	some field, value in _http
	field != "headers"
	field != "headerMap"
	field != "rawBody"
	_field_holds(value)
}

# A string field holds a secret, or Basic credentials that decode to one (a body or a request id
# that carries an Authorization value): the same tests as a walk's (_holds).
_field_holds(value) if _secret(value)

else if _basic_secret(value)

# (What the gate builds holds strings there; a caller of the gate's path may send anything.)
_hits contains [kind, "input", array.concat(["attributes", "request", "http", field], path)] if {
	_check
	some field, doc in _http
	not is_string(doc)
	field != "headers"
	field != "headerMap"
	walk(doc, [path, value])
	kind := _holds(path, value)
}

# A body Envoy packs as bytes (pack_as_bytes) is logged in base64.
_hits contains ["value", "input", ["attributes", "request", "http", "rawBody"]] if {
	_check
	_field_holds(base64.decode(_http.rawBody))
}

# Everything else, walked: the input's other keys (parsed_path, parsed_query, parsed_body, and
# whatever a caller of the gate's path sent), the attributes' other keys (source, destination,
# tlsSession, contextExtensions, metadataContext, ...) and the request's (time).
_hits contains [kind, "input", array.concat(["parsed_body"], path)] if {
	_check
	walk(input.input.parsed_body, [path, value])
	kind := _holds(path, value)
}

_hits contains ["value", "input", ["parsed_path", i]] if {
	_check
	some i, segment in input.input.parsed_path
	_secret(segment)
}

_hits contains ["key", "input", ["parsed_query", name]] if {
	_check
	some name, _ in input.input.parsed_query
	_secret(name)
}

_hits contains ["value", "input", ["parsed_query", name, i]] if {
	_check
	some name, values in input.input.parsed_query
	some i, value in values
	_secret(value)
}

_hits contains [kind, "input", array.concat([key], path)] if {
	_check
	some key, doc in input.input
	not _searched_key[key]
	walk(doc, [path, value])
	kind := _holds(path, value)
}

# Keys of a Check's input searched by the rules above.
_searched_key := {"attributes", "parsed_body", "parsed_path", "parsed_query"}

_hits contains [kind, "input", array.concat(["attributes", key], path)] if {
	_check
	some key, doc in input.input.attributes
	key != "request"
	_may_hold_secret(doc)
	walk(doc, [path, value])
	kind := _holds(path, value)
}

_hits contains [kind, "input", array.concat(["attributes", "request", key], path)] if {
	_check
	some key, doc in input.input.attributes.request
	key != "http"
	_may_hold_secret(doc)
	walk(doc, [path, value])
	kind := _holds(path, value)
}

# A cheap look before a walk (which makes a path for every node): the JSON text of a document
# holds every token-shaped key and string of the document, and the event's credentials unless
# one holds a character JSON escapes.
_may_hold_secret(doc) if _text_holds(json.marshal(doc))

# Basic credentials too, which a walk decodes (_holds): they are in the JSON text as they are.
_text_holds(text) if _secret(text)

else if _basic_secret(text)

_may_hold_secret(_) if {
	some raw in _credentials
	_json_escapes(raw)
}

# Nor are the tokens of a prefix that holds such a character ("acme<" is "acme\u003c" there),
# which _prefix_shaped looks for: such a prefix has every such document walked.
_may_hold_secret(_) if {
	some p in _bare_prefixes
	_json_escapes(p)
}

_json_escapes(s) if regex.match(`[\x00-\x1f"\\<>&\x{2028}\x{2029}]`, s)

_hits contains [kind, "result", path] if {
	not _answer
	walk(input.result, [path, value])
	kind := _holds(path, value)
}

# What a node of a walk holds: "key" when the key it is found under holds a secret (first: a
# pointer to the node would name it), "value" when it is a string that holds one.
_holds(path, value) := "key" if {
	n := count(path)
	n > 0
	_secret(path[n - 1])
} else := "value" if {
	_secret(value)
} else := "value" if {
	_basic_secret(value)
}

# The policy's answers echo no credential, but their reasons and messages may name what the
# request named: the gate's 404 names the method and the path (without its query) of a request it
# does not cover. Those strings are read; the rest of an answer is not walked.
_hits contains ["value", "result", ["reasons", i]] if {
	_answer
	some i, reason in input.result.reasons
	_secret(reason)
}

_hits contains ["value", "result", ["decision", "reasons", i]] if {
	_answer
	some i, reason in input.result.decision.reasons
	_secret(reason)
}

_hits contains ["value", "result", [field]] if {
	_answer
	some field in ["message", "body"]
	_secret(input.result[field])
}

_hits contains ["value", "result", ["decision", "message"]] if {
	_answer
	_secret(input.result.decision.message)
}

_answer if input.path in _answers

# The policy's answers: decisions, and the gate's response built from one.
_answers := {
	"pat/allow", "pat/decision", "pat/admin/allow", "pat/admin/decision",
	"pat/envoy/allow", "pat/envoy/decision", "pat/envoy/response",
}

_secret(value) if {
	is_string(value)
	_holds_secret(value)
}

# A token is 32 characters or more, a credential 8 or more: shorter strings (most names and
# values of a request) are not looked at further.
_holds_secret(s) if {
	count(s) >= 32
	_tokenlike(s)
}

_tokenlike(s) if _has_token_shape(s)

# Basic credentials outside the credential headers (in a header of a proxy's own, a metadata
# value, a direct input): what they decode to.
_basic_secret(value) if {
	is_string(value)
	_basic(value)
	some m in regex.find_all_string_submatch_n(`(?i)\bbasic\s+([A-Za-z0-9+/]{8,}={0,2})`, value, -1)
	_holds_secret(base64.decode(m[1]))
}

_basic(s) if contains(s, "asic ")

_basic(s) if contains(s, "ASIC ")

# A token written with escapes: "_" as %5F (a path is logged as sent, and split into segments
# before it is decoded), every character percent-encoded, or JSON's \u005f in a body Envoy
# forwards as text (also inside the JSON text _may_hold_secret looks at, as \\u005f).
_tokenlike(s) if {
	_escaped(s)
	_has_token_shape(regex.replace(s, `%5[Ff]|\\+u005[Ff]`, "_"))
}

_tokenlike(s) if {
	contains(s, "%")
	_has_token_shape(urlquery.decode(s))
}

# Every character written as a JSON escape (a body forwarded as text: "\u0067\u0068\u0070\u005f..."
# is a token to whoever reads the log): the escapes of ASCII characters, after any number of
# backslashes, read as percent escapes.
_tokenlike(s) if {
	contains(s, `\u00`)
	_has_token_shape(urlquery.decode(regex.replace(s, `\\+u00([0-7][0-9A-Fa-f])`, "%$1")))
}

_holds_secret(s) if {
	count(s) >= 8
	some raw in _credentials
	contains(s, raw)
}

# The event's own credentials, whatever their shape (a token of another deployment's prefix
# without "_", which pat.token_prefixes does not name, has none the mask knows): a direct
# decision's token, and what the credential headers of an Envoy input carry, read as the gate
# reads Authorization (Bearer, token, both halves of Basic). Eight characters at
# least: a Basic user name such as "git" is no secret.
_credentials contains raw if {
	raw := input.input.credential.token
	is_string(raw)
	count(raw) >= 8
}

_credentials contains raw if {
	some [name, value] in _credential_header_values
	_value_headers[name]
	raw := trim_space(value)
	count(raw) >= 8
}

_credentials contains raw if {
	some [scheme, raw] in _scheme_credentials
	lower(scheme) in {"bearer", "token"}
	count(raw) >= 8
}

_credentials contains raw if {
	some [scheme, encoded] in _scheme_credentials
	lower(scheme) == "basic"
	decoded := base64.decode(encoded)
	i := indexof(decoded, ":")
	some raw in [substring(decoded, 0, i), substring(decoded, i + 1, -1)]
	count(raw) >= 8
}

_scheme_credentials contains [substring(v, 0, i), trim_space(substring(v, i + 1, -1))] if {
	some [name, value] in _credential_header_values
	_scheme_headers[name]
	v := trim_space(value)
	i := indexof(v, " ")
	i > 0
}

# [lower-case name, value] of each credential header (the gate lowers a Check's header names; an
# input sent to the gate's path through OPA's API may spell them in any case).
_credential_header_values contains [lower(name), value] if {
	some name, value in _http.headers
	lower(name) in _credential_headers
	is_string(value)
}

_escaped(s) if contains(s, "%")

_escaped(s) if contains(s, `\u`)

# A token's shape: GitHub's, whatever the prefix before its "_" (_token_shaped), or after a prefix
# of this deployment's that has no such "_" (_prefix_shaped).
_has_token_shape(s) if _token_shaped(s)

_has_token_shape(s) if _prefix_shaped(s)

# A token's shape: a prefix, "_", and a random part of 30 or more letters, digits and "_" with an
# upper-case letter or digit in it (GitHub's ghp_ and github_pat_ tokens; permission and rule
# names are lower case).
_token_shaped(s) if {
	contains(s, "_")
	some run in regex.find_n(`[A-Za-z0-9]+_[A-Za-z0-9_]{30,}`, s, -1)
	regex.match(`_[A-Za-z0-9_]*[A-Z0-9]`, run)
}

# A token of a prefix that _token_shaped does not see (token_prefixes such as "acme" or "acme-"):
# the prefix, in any case, then 30 or more letters, digits and "_" with an upper-case letter or
# digit among them, as after "_" above (a classic token has 30 random characters and a
# 6-character checksum there). A word that starts with the prefix is not one: "acmecorp",
# "acme-corp", nor a lower-case run as long as a token's ("acmecorporationinternalservicesdivision").
_prefix_shaped(s) if {
	regex.match(_prefix_pattern, s) # (which allocates less than a search that finds nothing)
	some m in regex.find_all_string_submatch_n(_prefix_pattern, s, -1)
	regex.match(`[A-Z0-9]`, m[1])
}

# One pattern for all those prefixes, so that a string is read once; none with GitHub's alone.
_prefix_pattern := concat("", ["(?i)(?:", concat("|", [_quoted(p) | some p in _bare_prefixes]), ")([A-Za-z0-9_]{30,})"]) if {
	count(_bare_prefixes) > 0
}

_quoted(p) := regex.replace(p, `[\\.+*?()|\[\]{}^$]`, `\$0`)

# The token prefixes this process knows (GitHub's, the plugin's token_prefixes, earlier ones too,
# and its store's) whose tokens _token_shaped may not see: all but those with a "_" after a letter
# or digit and nothing but letters, digits and "_" after it, as GitHub's. Evaluated once per event.
_bare_prefixes contains p if {
	some p in _token_prefixes
	not regex.match(`[A-Za-z0-9]_[A-Za-z0-9_]*$`, p)
}

# (A rule of its own, which tests replace: the stock OPA that runs them has no implementation of
# pat.token_prefixes, and a built-in without arguments cannot be mocked by a function.)
_token_prefixes := pat.token_prefixes()

_pointer(root, path) := concat("/", array.concat(["", root], [sprintf("%v", [key]) | some key in path]))

_addressable(path) if {
	every key in path {
		_plain_key(key)
	}
}

_plain_key(key) if is_number(key)

_plain_key(key) if regex.match(`^[A-Za-z0-9_.~$&+:=@-]+$`, key)

# What a named rule already removes or replaces.
_covered(pointer) if {
	some m in _named
	_covers(_named_path(m), pointer)
}

_named_path(m) := m if is_string(m)

else := m.path

_covers(path, pointer) if path == pointer

_covers(path, pointer) if startswith(pointer, concat("", [path, "/"]))

# METADATA
# description: >-
#   An ad-hoc query (/v1/query) is logged with its text, and a query of a data path with that
#   path, which no mask reaches: an event whose query or path holds a token is not logged at
#   all. (No default: the plugin's fallback copy of this module may sit beside it, and two
#   defaults of one rule do not compile.)
drop if _secret(input.query)

# A query of a data path that names a token (/v1/data/pat/ghp_...) is logged with that path,
# which no mask reaches either.
drop if _secret(input.path)
