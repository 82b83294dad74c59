package system.log_test

import data.system.log

test_mask_direct_query_token if {
	log.mask == {"/input/credential/token"} with input as {"input": {"credential": {"type": "pat", "token": "ghp_x"}}} with log._token_prefixes as github_prefixes
}

test_mask_envoy_credentials[note] if {
	some note, tc in {
		"authorization": {"headers": {"authorization": "Bearer ghp_x", "accept": "*/*"}, "want": {"/input/attributes/request/http/headers/authorization"}},
		"several": {
			"headers": {"authorization": "Basic eDpnaHBfeA==", "cookie": "s=1", "proxy-authorization": "Basic eA=="},
			"want": {
				"/input/attributes/request/http/headers/authorization",
				"/input/attributes/request/http/headers/cookie",
				"/input/attributes/request/http/headers/proxy-authorization",
			},
		},
		"none": {"headers": {"accept": "*/*"}, "want": set()},
	}
	log.mask == tc.want with input as {"input": {"attributes": {"request": {"http": {"path": "/", "headers": tc.headers}}}}} with log._token_prefixes as github_prefixes
}

test_mask_token_in_query if {
	log.mask == {
		"/input/parsed_query/access_token",
		{"op": "upsert", "path": "/input/attributes/request/http/path", "value": "/repos/o/r?[redacted]"},
	} with input as {"input": {
		"attributes": {"request": {"http": {"path": "/repos/o/r?a=1&access_token=ghp_x", "headers": {}}}},
		"parsed_query": {"a": ["1"], "access_token": ["ghp_x"]},
	}}
		with log._token_prefixes as github_prefixes
}

test_mask_token_in_query_with_an_escaped_name[note] if {
	some note, tc in {
		"decoded in parsed_query": {
			"path": "/repos/o/r?access%5Ftoken=ghp_x",
			"parsed_query": {"access_token": ["ghp_x"]},
			"want": {"/input/parsed_query/access_token", {"op": "upsert", "path": "/input/attributes/request/http/path", "value": "/repos/o/r?[redacted]"}},
		},
		"no parsed_query, escaped name": {
			"path": "/repos/o/r?%61ccess_token=ghp_x",
			"parsed_query": {},
			"want": {{"op": "upsert", "path": "/input/attributes/request/http/path", "value": "/repos/o/r?[redacted]"}},
		},
		"harmless query": {"path": "/repos/o/r?page=2", "parsed_query": {"page": ["2"]}, "want": set()},
		"semicolon separator, which leaves parsed_query empty": {
			"path": "/repos/o/r?x=1;access_token=ghp_x",
			"parsed_query": {},
			"want": {{"op": "upsert", "path": "/input/attributes/request/http/path", "value": "/repos/o/r?[redacted]"}},
		},
		"array name": {
			"path": "/repos/o/r?access_token[]=ghp_x",
			"parsed_query": {"access_token[]": ["ghp_x"]},
			"want": {"/input/parsed_query/access_token[]", {"op": "upsert", "path": "/input/attributes/request/http/path", "value": "/repos/o/r?[redacted]"}},
		},
		"upper case": {
			"path": "/repos/o/r?ACCESS_TOKEN=ghp_x",
			"parsed_query": {"ACCESS_TOKEN": ["ghp_x"]},
			"want": {"/input/parsed_query/ACCESS_TOKEN", {"op": "upsert", "path": "/input/attributes/request/http/path", "value": "/repos/o/r?[redacted]"}},
		},
	}
	log.mask == tc.want with input as {"input": {
		"attributes": {"request": {"http": {"path": tc.path, "headers": {}}}},
		"parsed_query": tc.parsed_query,
	}}
		with log._token_prefixes as github_prefixes
}

test_mask_raw_headers_and_builtin_cache if {
	log.mask == {"/input/attributes/request/http/headerMap", "/nd_builtin_cache/pat.token"} with input as {
		"input": {"attributes": {"request": {"http": {"path": "/", "headerMap": {"headers": [{"key": "authorization", "rawValue": "eA=="}]}}}}},
		"nd_builtin_cache": {"pat.token": {"[\"ghp_x\"]": {}}},
	}
		with log._token_prefixes as github_prefixes
}

# Envoy sends the path again as the :path pseudo-header.
test_mask_token_in_the_path_header if {
	log.mask == {
		"/input/parsed_query/access_token",
		{"op": "upsert", "path": "/input/attributes/request/http/path", "value": "/repos/o/r?[redacted]"},
		{"op": "upsert", "path": "/input/attributes/request/http/headers/:path", "value": "/repos/o/r?[redacted]"},
	} with input as {"input": {
		"attributes": {"request": {"http": {"path": "/repos/o/r?access_token=ghp_x", "headers": {":path": "/repos/o/r?access_token=ghp_x", ":method": "GET"}}}},
		"parsed_query": {"access_token": ["ghp_x"]},
	}}
		with log._token_prefixes as github_prefixes
}

classic_token := "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"

fine_grained_token := "github_pat_11ABCDEFG0123456789abc_0123456789abcdefghijABCDEFGHIJ0123456789abcdefghijABCDEFGHIJklmno"

redacted(path) := {"op": "upsert", "path": path, "value": "[REDACTED]"}

# What pat.token_prefixes answers in a deployment of GitHub's prefixes. The mask reads it through
# _token_prefixes, which every test replaces: the stock OPA that runs these tests has no
# implementation of the built-in.
github_prefixes := {"ghp_", "github_pat_"}

# A token outside the fields the mask names is replaced wherever it is.
test_mask_tokens_anywhere[note] if {
	some note, tc in {
		"a credential given as a string": {
			"event": {"input": {"credential": classic_token, "action": "read"}},
			"want": {redacted("/input/credential")},
		},
		"a package's result with the raw token in a private rule": {
			"event": {"input": {"credential": {"type": "pat", "token": classic_token}}, "result": {"_raw_token": classic_token, "allow": true}},
			"want": {"/input/credential/token", redacted("/result/_raw_token")},
		},
		"the whole data tree": {
			"event": {"input": {"credential": {"type": "pat", "token": fine_grained_token}}, "result": {"pat": {"_raw_token": fine_grained_token}}},
			"want": {"/input/credential/token", redacted("/result/pat/_raw_token")},
		},
		"the gate's mapping": {
			"event": {
				"input": {"attributes": {"request": {"http": {"path": "/", "headers": {"authorization": concat(" ", ["token", classic_token])}}}}},
				"result": {"credential": {"type": "pat", "token": classic_token}, "action": "read"},
			},
			"want": {"/input/attributes/request/http/headers/authorization", redacted("/result/credential/token")},
		},
		"inside a longer string, in an array": {
			"event": {"input": {"notes": ["x", concat("", ["token=", classic_token, ";"])]}},
			"want": {redacted("/input/notes/1")},
		},
		"the event's own credential, whatever its shape": {
			"event": {"input": {"credential": {"type": "pat", "token": "not-a-github-token-but-secret"}}, "result": {"echo": "not-a-github-token-but-secret"}},
			"want": {"/input/credential/token", redacted("/result/echo")},
		},
		"a key the mask cannot address erases its document": {
			"event": {"input": {"odd key/with slash": classic_token}},
			"want": {"/input"},
		},
		"names that only look long": {
			"event": {"input": {"permission": "organization_personal_access_token_requests"}, "result": {"allow": true}},
			"want": set(),
		},
	}
	log.mask == tc.want with input as tc.event with log._token_prefixes as github_prefixes
}

# An ad-hoc query's result is replaced whole: OPA's mask cannot point inside it.
test_mask_tokens_in_an_ad_hoc_querys_result[note] if {
	some note, tc in {
		"a binding": {
			"event": {"query": "assign(x, input.a)", "input": {"a": classic_token}, "result": [{"x": classic_token}]},
			"want": {redacted("/input/a"), redacted("/result")},
		},
		"deep inside a binding": {
			"event": {"query": "assign(d, data.pat)", "result": [{"d": {"_raw": [fine_grained_token]}}]},
			"want": {redacted("/result")},
		},
		"under a key that holds one": {
			"event": {"query": "assign(x, input)", "result": [{"x": {classic_token: true}}]},
			"want": {redacted("/result")},
		},
		"the event's own credential": {
			"event": {"query": "assign(x, input.credential.token)", "input": {"credential": {"type": "pat", "token": "not-a-github-token-but-secret"}}, "result": [{"x": "not-a-github-token-but-secret"}]},
			"want": {"/input/credential/token", redacted("/result")},
		},
		"nothing to hide": {
			"event": {"query": "assign(x, data.pat.allow)", "result": [{"x": false}]},
			"want": set(),
		},
	}
	log.mask == tc.want with input as tc.event with log._token_prefixes as github_prefixes
}

test_drop_queries_that_hold_a_token[note] if {
	some note, tc in {
		"a built-in called with a token": {"query": concat("", [`t := pat.token("`, classic_token, `")`]), "drop": true},
		"the event's credential in the query": {"query": `data.x[input.credential.token]`, "input": {"credential": {"token": "secret-of-eight"}}, "drop": false},
		"the credential spelled in the query": {"query": `x := "secret-of-eight"`, "input": {"credential": {"token": "secret-of-eight"}}, "drop": true},
		"a plain query": {"query": "data.pat.allow", "drop": false},
	}
	event := object.union({"query": tc.query}, {"input": object.get(tc, "input", {})})
	_dropped(event) == tc.drop
}

_dropped(event) if log.drop with input as event with log._token_prefixes as github_prefixes

else := false

# A Check's event (the gate's decision path): its body, parsed or packed as bytes, and its host
# are searched too; an input that only looks like a Check's is walked whole.
check_event(http, extra) := object.union(
	{"path": "pat/envoy/response", "input": {"attributes": {"request": {"http": object.union({"path": "/", "headers": {}}, http)}}}, "result": {"allowed": false}},
	{"input": extra},
)

test_mask_tokens_in_a_check[note] if {
	some note, tc in {
		"a parsed body": {
			"event": check_event({"body": "{}"}, {"parsed_body": {"client_payload": {"gh": classic_token}}}),
			"want": {redacted("/input/parsed_body/client_payload/gh")},
		},
		"a body packed as bytes": {
			"event": check_event({"rawBody": base64.encode(concat("", [`{"t": "`, classic_token, `"}`]))}, {}),
			"want": {redacted("/input/attributes/request/http/rawBody")},
		},
		"the host": {
			"event": check_event({"host": concat("", [classic_token, ".example.com"])}, {}),
			"want": {redacted("/input/attributes/request/http/host")},
		},
		"a direct decision with an attributes key": {
			"event": {"path": "pat/decision", "input": {"attributes": {"request": {"http": {"path": "/"}}}, "note": classic_token}},
			"want": {redacted("/input/note")},
		},
	}
	log.mask == tc.want with input as tc.event with log._token_prefixes as github_prefixes
}

# Everything else a Check carries: the request's other fields, the peers, the TLS session, the
# context extensions and the metadata (which an Envoy filter may fill from a header), and any
# other key of an input sent to the gate's path.
test_mask_tokens_in_a_check_elsewhere[note] if {
	some note, tc in {
		"the request id (x-request-id, kept by preserve_external_request_id)": {
			"event": check_event({"id": classic_token}, {}),
			"want": {redacted("/input/attributes/request/http/id")},
		},
		"the method": {"event": check_event({"method": classic_token}, {}), "want": {redacted("/input/attributes/request/http/method")}},
		"the scheme": {"event": check_event({"scheme": classic_token}, {}), "want": {redacted("/input/attributes/request/http/scheme")}},
		"the protocol": {"event": check_event({"protocol": classic_token}, {}), "want": {redacted("/input/attributes/request/http/protocol")}},
		"the query field": {
			"event": check_event({"query": concat("", ["access_token=", classic_token])}, {}),
			"want": {redacted("/input/attributes/request/http/query")},
		},
		"the fragment": {"event": check_event({"fragment": classic_token}, {}), "want": {redacted("/input/attributes/request/http/fragment")}},
		"a context extension": {
			"event": check_event({}, {"attributes": {"contextExtensions": {"k": fine_grained_token}}}),
			"want": {redacted("/input/attributes/contextExtensions/k")},
		},
		"metadata a filter copied from a header": {
			"event": check_event({}, {"attributes": {"metadataContext": {"filterMetadata": {"envoy.filters.http.header_to_metadata": {"api_key": classic_token}}}}}),
			"want": {redacted("/input/attributes/metadataContext/filterMetadata/envoy.filters.http.header_to_metadata/api_key")},
		},
		"the TLS session's SNI": {
			"event": check_event({}, {"attributes": {"tlsSession": {"sni": classic_token}}}),
			"want": {redacted("/input/attributes/tlsSession/sni")},
		},
		"a peer": {
			"event": check_event({}, {"attributes": {"source": {"principal": classic_token, "address": {"socketAddress": {"address": fine_grained_token}}}}}),
			"want": {redacted("/input/attributes/source/principal"), redacted("/input/attributes/source/address/socketAddress/address")},
		},
		"another key of an input sent to the gate's path": {
			"event": check_event({}, {"note": [classic_token]}),
			"want": {redacted("/input/note/0")},
		},
		"nothing to find": {
			"event": check_event({"id": "5b1f2a9c-1c1d-4b8e-9f0a-3f5e8c1d2b7a", "method": "GET", "scheme": "https", "protocol": "HTTP/1.1"}, {"attributes": {"source": {"address": {"socketAddress": {"address": "10.0.0.7", "portValue": 53122}}}}, "parsed_path": [], "parsed_query": {}, "version": {"encoding": "protojson", "ext_authz": "v3"}}),
			"want": set(),
		},
	}
	log.mask == tc.want with input as tc.event with log._token_prefixes as github_prefixes
}

# A key that holds a token: OPA lists the pointers it erased and masked in the event itself, so
# the mask never points at such a key; it erases the object that holds it.
test_mask_keys_that_hold_a_token[note] if {
	lowered := lower(classic_token)
	some note, tc in {
		"a header's name (the gate lowers names)": {
			"event": check_event({"headers": {lowered: "1", "accept": "*/*"}}, {}),
			"want": {"/input/attributes/request/http/headers"},
		},
		"a query parameter's name": {
			"event": check_event({"path": concat("", ["/repos/o/r?", classic_token])}, {"parsed_query": {classic_token: [""]}}),
			"want": {"/input/parsed_query", redacted("/input/attributes/request/http/path")},
		},
		"a query parameter's name that holds \"token\" too": {
			"event": check_event({}, {"parsed_query": {concat("", ["token_", classic_token]): ["1"]}}),
			"want": {"/input/parsed_query"},
		},
		"a key of a parsed body, and the body": {
			"event": check_event(
				{"body": json.marshal({"operation": "download", "objects": {classic_token: 1}})},
				{"parsed_body": {"operation": "download", "objects": {classic_token: 1}}},
			),
			"want": {"/input/parsed_body/objects", redacted("/input/attributes/request/http/body")},
		},
		"a metadata key": {
			"event": check_event({}, {"attributes": {"metadataContext": {"filterMetadata": {"f": {fine_grained_token: "x"}}}}}),
			"want": {"/input/attributes/metadataContext/filterMetadata/f"},
		},
		"a key of a direct input, at the top": {
			"event": {"path": "pat/decision", "input": {"action": "read", classic_token: 1}},
			"want": {"/input"},
		},
		"a nested key of a direct input, with a token under it": {
			"event": {"path": "pat/decision", "input": {"action": "read", "notes": [{classic_token: fine_grained_token}]}},
			"want": {"/input/notes/0"},
		},
		"keys under keys": {
			"event": {"path": "x", "input": {"a": {classic_token: {fine_grained_token: 1}}}},
			"want": {"/input/a"},
		},
		"the event's credential as a key": {
			"event": {"input": {"credential": {"type": "pat", "token": "not-a-github-token-but-secret"}, "seen": {"not-a-github-token-but-secret": true}}},
			"want": {"/input/credential/token", "/input/seen"},
		},
		"a key of a result": {
			"event": {"path": "x", "input": {}, "result": {"by_token": {classic_token: 1}}},
			"want": {"/result/by_token"},
		},
		"under a key the mask cannot address": {
			"event": {"path": "x", "input": {"odd/key": {classic_token: 1}}},
			"want": {"/input"},
		},
	}
	log.mask == tc.want with input as tc.event with log._token_prefixes as github_prefixes
}

# A token written with escapes: "_" as %5F (the gate splits the path before decoding it), every
# character percent-encoded, or JSON's \u005f in a body forwarded as text.
test_mask_escaped_tokens[note] if {
	pct := replace(classic_token, "_", "%5F")
	fg_pct := replace(fine_grained_token, "_", "%5f")
	json_escaped := replace(classic_token, "_", `\u005f`)
	every_char := concat("", ["%67%68%70%5F", substring(classic_token, 4, -1)])
	every_json := concat("", [sprintf(`\u%04x`, [c]) | some c in _code_points(classic_token)])
	some note, tc in {
		"a header": {"event": check_event({"headers": {"x-note": pct}}, {}), "want": {redacted("/input/attributes/request/http/headers/x-note")}},
		"the path and its segments": {
			"event": check_event({"path": concat("/", ["/repos/o/r/contents", fg_pct])}, {"parsed_path": ["repos", "o", "r", "contents", fg_pct]}),
			"want": {redacted("/input/attributes/request/http/path"), redacted("/input/parsed_path/4")},
		},
		"a form body": {"event": check_event({"body": concat("", ["password=", pct])}, {}), "want": {redacted("/input/attributes/request/http/body")}},
		"a JSON body forwarded as text": {
			"event": check_event({"body": concat("", [`{"t": "`, json_escaped, `"}`])}, {}),
			"want": {redacted("/input/attributes/request/http/body")},
		},
		"metadata": {
			"event": check_event({}, {"attributes": {"metadataContext": {"filterMetadata": {"f": {"k": json_escaped}}}}}),
			"want": {redacted("/input/attributes/metadataContext/filterMetadata/f/k")},
		},
		"every character escaped, in a direct input": {"event": {"path": "x", "input": {"note": every_char}}, "want": {redacted("/input/note")}},
		"every character JSON-escaped, in a body forwarded as text": {
			"event": check_event({"body": concat("", [`{"oid": "`, every_json, `", "size": 1}`])}, {}),
			"want": {redacted("/input/attributes/request/http/body")},
		},
		"every character JSON-escaped, in metadata": {
			"event": check_event({}, {"attributes": {"metadataContext": {"filterMetadata": {"f": {"k": every_json}}}}}),
			"want": {redacted("/input/attributes/metadataContext/filterMetadata/f/k")},
		},
	}
	log.mask == tc.want with input as tc.event with log._token_prefixes as github_prefixes
}

test_drop_queries_that_hold_an_escaped_token if {
	log.drop with input as {"query": concat("", [`t := pat.token("`, replace(classic_token, "_", `\u005f`), `")`])} with log._token_prefixes as github_prefixes
}

# The policy's answers are not walked, but their reasons and messages are read: the gate's 404
# names the method and path of a request it does not cover.
test_mask_tokens_in_an_answer[note] if {
	uncovered := concat("", ["GET /user/", classic_token, " is not a path the PAT gate covers"])
	some note, tc in {
		"the gate's 404 reason": {
			"event": object.union(check_event({"path": concat("", ["/user/", classic_token])}, {}), {"result": {
				"allowed": false, "http_status": 404, "body": `{"message":"Not Found"}`,
				"decision": {"allow": false, "status": 404, "reasons": [uncovered], "message": "Not Found"},
			}}),
			"want": {redacted("/input/attributes/request/http/path"), redacted("/result/decision/reasons/0")},
		},
		"a decision's reason and message": {
			"event": {"path": "pat/decision", "input": {"resource": {"repository": fine_grained_token}}, "result": {
				"allow": false, "reasons": ["x", fine_grained_token], "message": fine_grained_token,
			}},
			"want": {redacted("/input/resource/repository"), redacted("/result/reasons/1"), redacted("/result/message")},
		},
		"a boolean answer": {"event": {"path": "pat/allow", "input": {}, "result": false}, "want": set()},
	}
	log.mask == tc.want with input as tc.event with log._token_prefixes as github_prefixes
}

# A token of a prefix without "_" that this process does not know (another deployment's: not among
# pat.token_prefixes) has no shape the mask knows; a Check's own credential, read from its
# credential headers as the gate reads it, is replaced wherever else it is.
custom_token := "acme3BVnzOBLArUHCUKpfbhixfghiTrClD0WxOTk"

test_mask_a_checks_own_credential[note] if {
	some note, tc in {
		"Bearer, echoed in a header, the path, the body and the 404 reason": {
			"event": object.union(
				check_event(
					{"path": concat("", ["/user/", custom_token]), "headers": {"authorization": concat(" ", ["Bearer", custom_token]), "x-note": custom_token}, "body": custom_token},
					{"parsed_path": ["user", custom_token]},
				),
				{"result": {"decision": {"reasons": [concat("", ["GET /user/", custom_token, " is not a path the PAT gate covers"])]}}},
			),
			"want": {
				"/input/attributes/request/http/headers/authorization",
				redacted("/input/attributes/request/http/headers/x-note"),
				redacted("/input/attributes/request/http/path"),
				redacted("/input/attributes/request/http/body"),
				redacted("/input/parsed_path/1"),
				redacted("/result/decision/reasons/0"),
			},
		},
		"the password of Basic, in the query and metadata": {
			"event": check_event(
				{"headers": {"authorization": concat(" ", ["basic", base64.encode(concat(":", ["git", custom_token]))])}},
				{"parsed_query": {"k": [custom_token]}, "attributes": {"metadataContext": {"filterMetadata": {"f": {"k": custom_token}}}}},
			),
			"want": {
				"/input/attributes/request/http/headers/authorization",
				redacted("/input/parsed_query/k/0"),
				redacted("/input/attributes/metadataContext/filterMetadata/f/k"),
			},
		},
		"the gate's package asked for directly": {
			"event": {
				"path": "pat/envoy",
				"input": {"attributes": {"request": {"http": {"path": "/repos/o/r", "headers": {"authorization": concat(" ", ["token", custom_token])}}}}},
				"result": {"credential": {"type": "pat", "token": custom_token}, "_headers": {"authorization": concat(" ", ["token", custom_token])}},
			},
			"want": {"/input/attributes/request/http/headers/authorization", redacted("/result/credential/token"), redacted("/result/_headers/authorization")},
		},
		"a short user name of Basic is no credential": {
			"event": check_event({"headers": {"authorization": concat(" ", ["Basic", base64.encode(concat(":", ["git", custom_token]))]), "user-agent": "git/2.45"}}, {}),
			"want": {"/input/attributes/request/http/headers/authorization"},
		},
	}
	log.mask == tc.want with input as tc.event with log._token_prefixes as github_prefixes
}

# A deployment whose token_prefixes have no "_" (classic: acme, fine_grained: acmefg): the
# prefixes are among pat.token_prefixes, and a token of theirs is recognised by its shape wherever
# it is, also when it is not the event's credential: the prefix in any case, then 30 or more
# letters, digits and "_" with an upper-case letter or digit among them.
acme_prefixes := {"ghp_", "github_pat_", "acme", "acmefg"}

other_custom_token := "acmeZx9KqL2mNpR4sTuV6wXyA8bCdE0fGhJ1kLmN"

test_mask_tokens_of_a_prefix_without_underscore[note] if {
	some note, tc in {
		"a header of no credential name, the credential another token": {
			"event": check_event({"headers": {"authorization": concat(" ", ["Bearer", custom_token]), "x-note": other_custom_token}}, {}),
			"want": {"/input/attributes/request/http/headers/authorization", redacted("/input/attributes/request/http/headers/x-note")},
		},
		"a Check's other fields": {
			"event": check_event(
				{"path": concat("/", ["/user", other_custom_token]), "body": concat(" ", ["note:", other_custom_token]), "id": other_custom_token, "host": concat(".", [other_custom_token, "example.com"])},
				{"parsed_path": ["user", other_custom_token], "parsed_query": {"k": [other_custom_token]}, "attributes": {"metadataContext": {"filterMetadata": {"f": {"k": other_custom_token}}}}},
			),
			"want": {
				redacted("/input/attributes/request/http/path"),
				redacted("/input/attributes/request/http/body"),
				redacted("/input/attributes/request/http/id"),
				redacted("/input/attributes/request/http/host"),
				redacted("/input/parsed_path/1"),
				redacted("/input/parsed_query/k/0"),
				redacted("/input/attributes/metadataContext/filterMetadata/f/k"),
			},
		},
		"a header's name": {
			"event": check_event({"headers": {lower(other_custom_token): "1"}}, {}),
			"want": {"/input/attributes/request/http/headers"},
		},
		"a fine-grained token": {
			"event": check_event({"headers": {"x-note": concat("", ["acmefg", substring(fine_grained_token, 11, -1)])}}, {}),
			"want": {redacted("/input/attributes/request/http/headers/x-note")},
		},
		"the prefix in upper case, the token in lower case": {
			"event": check_event({"headers": {"x-a": upper(substring(other_custom_token, 0, 4)), "x-b": concat("", ["ACME", substring(other_custom_token, 4, -1)]), "x-c": lower(other_custom_token)}}, {}),
			"want": {redacted("/input/attributes/request/http/headers/x-b"), redacted("/input/attributes/request/http/headers/x-c")},
		},
		"written against other text, and percent-encoded": {
			"event": check_event({"headers": {"x-a": concat("", ["t=x", other_custom_token, "&y"]), "x-b": every_char_custom}}, {}),
			"want": {redacted("/input/attributes/request/http/headers/x-a"), redacted("/input/attributes/request/http/headers/x-b")},
		},
		"Basic credentials in a header of no credential name": {
			"event": check_event({"headers": {"x-forward": concat(" ", ["Basic", base64.encode(concat(":", ["git", other_custom_token]))])}}, {}),
			"want": {redacted("/input/attributes/request/http/headers/x-forward")},
		},
		"a direct decision and its result": {
			"event": {"path": "pat/envoy/mapped", "input": {"note": other_custom_token}, "result": {"token": other_custom_token}},
			"want": {redacted("/input/note"), redacted("/result/token")},
		},
		"words that start with the prefix": {
			"event": check_event(
				{"host": "acmecorp.example.com", "headers": {
					"x-org": "acmecorp",
					"x-team": "acme-corp-platform-engineering-team-of-2024",
					"x-long": "acmecorporationinternalservicesdivision",
					"x-short": "acmeCorp2024",
				}},
				{},
			),
			"want": set(),
		},
	}
	log.mask == tc.want with input as tc.event with log._token_prefixes as acme_prefixes
}

# other_custom_token with every character percent-encoded.
every_char_custom := "%61%63%6D%65%5A%78%39%4B%71%4C%32%6D%4E%70%52%34%73%54%75%56%36%77%58%79%41%38%62%43%64%45%30%66%47%68%4A%31%6B%4C%6D%4E"

# Where pat.token_prefixes names GitHub's alone, the same token is not recognised: it is not the
# event's credential, and no shape says it is a token.
test_mask_leaves_a_token_of_an_unknown_prefix if {
	log.mask == {"/input/attributes/request/http/headers/authorization"} with input as check_event({"headers": {"authorization": concat(" ", ["Bearer", custom_token]), "x-note": other_custom_token}}, {})
		with log._token_prefixes as github_prefixes
}

# An ad-hoc query or a data path that holds such a token is dropped, as one that holds GitHub's.
test_drop_events_that_hold_a_token_of_a_prefix_without_underscore[note] if {
	some note, tc in {
		"an ad-hoc query": {"event": {"query": concat("", [`t := pat.token("`, other_custom_token, `")`])}, "drop": true},
		"a data path": {"event": {"path": concat("/", ["pat", other_custom_token]), "input": {}}, "drop": true},
		"a query that names the prefix": {"event": {"query": `startswith(input.token, "acme")`}, "drop": false},
	}
	_dropped_with(tc.event, acme_prefixes) == tc.drop
}

_dropped_with(event, prefixes) if log.drop with input as event with log._token_prefixes as prefixes

else := false

# Prefixes that the shape after "_" does not see, whatever they hold: "_" followed by something
# else than a token's characters, characters a regular expression would read, or one JSON escapes
# (the mask then walks a Check's metadata without looking at its JSON text first).
test_mask_tokens_of_odd_prefixes[note] if {
	secret := substring(other_custom_token, 4, -1)
	some note, tc in {
		"an underscore, then a hyphen": {"prefixes": {"ac_me-"}, "note": concat("", ["ac_me-", secret]), "want": true},
		"regular expression characters": {"prefixes": {"a.c+"}, "note": concat("", ["a.c+", secret]), "want": true},
		"regular expression characters, read as such": {"prefixes": {"a.c+"}, "note": concat("", ["abcc", secret]), "want": false},
		"a character JSON escapes": {"prefixes": {"acme<"}, "note": concat("", ["acme<", secret]), "want": true},
		"one prefix the start of another": {"prefixes": {"acme", "acme-"}, "note": concat("", ["acme-", secret]), "want": true},
		"a prefix like GitHub's": {"prefixes": {"acme_"}, "note": concat("", ["acme_", secret]), "want": true},
	}
	event := check_event({}, {"attributes": {"metadataContext": {"filterMetadata": {"f": {"k": tc.note}}}}})
	masked := redacted("/input/attributes/metadataContext/filterMetadata/f/k") in log.mask with input as event
		with log._token_prefixes as github_prefixes | tc.prefixes
	masked == tc.want
}

# Credentials a proxy moved to another header, and Basic credentials in any header.
test_mask_moved_and_basic_credentials[note] if {
	basic := concat(" ", ["Basic", base64.encode(concat(":", ["x", classic_token]))])
	some note, tc in {
		"x-forwarded-authorization (Google's ESPv2 and API Gateway)": {
			"event": check_event({"headers": {"x-forwarded-authorization": basic}}, {}),
			"want": {"/input/attributes/request/http/headers/x-forwarded-authorization"},
		},
		"x-amzn-remapped-authorization (Amazon's API Gateway)": {
			"event": check_event({"headers": {"x-amzn-remapped-authorization": basic}}, {}),
			"want": {"/input/attributes/request/http/headers/x-amzn-remapped-authorization"},
		},
		"Basic in a header of its own": {
			"event": check_event({"headers": {"x-upstream-auth": basic}}, {}),
			"want": {redacted("/input/attributes/request/http/headers/x-upstream-auth")},
		},
		"Basic in a direct input": {
			"event": {"path": "pat/envoy", "input": {"attributes": {"request": {"http": {"headers": {"x-other": basic}}}}}},
			"want": {redacted("/input/attributes/request/http/headers/x-other")},
		},
	}
	log.mask == tc.want with input as tc.event with log._token_prefixes as github_prefixes
}

# A query of a data path that names a token (/v1/data/pat/ghp_...): OPA logs the path, which no
# mask reaches.
test_drop_paths_that_hold_a_token[note] if {
	some note, tc in {
		"a token in the path": {"event": {"path": concat("/", ["pat", classic_token]), "input": {}}, "drop": true},
		"an escaped one": {"event": {"path": concat("/", ["pat", replace(fine_grained_token, "_", "%5F")])}, "drop": true},
		"the event's credential": {"event": {"path": "pat/not-a-github-token-but-secret", "input": {"credential": {"token": "not-a-github-token-but-secret"}}}, "drop": true},
		"a decision": {"event": {"path": "pat/decision", "input": {"credential": {"token": classic_token}}}, "drop": false},
	}
	_dropped(tc.event) == tc.drop
}

# An input sent to the gate's path through OPA's API may spell header names in any case.
test_mask_a_direct_input_to_the_gates_path_with_capitals if {
	log.mask == {
		"/input/attributes/request/http/headers/Authorization",
		redacted("/input/attributes/request/http/headers/X-Note"),
	} with input as check_event({"headers": {"Authorization": concat(" ", ["Bearer", custom_token]), "X-Note": custom_token}}, {}) with log._token_prefixes as github_prefixes
}

# A token in the path of a request whose query carries a credential: the named upsert, the only
# one of the field, replaces the path too.
test_mask_token_in_path_and_query if {
	target := "/repos/o/r/contents/ghp_pathPATHpathPATHpathPATHpath000000?access_token=x"
	m := log.mask with input as {"path": "pat/envoy/response", "input": {
		"attributes": {"request": {"http": {"path": target, "headers": {":path": target}}}},
		"parsed_path": ["repos", "o", "r", "contents", "ghp_pathPATHpathPATHpathPATHpath000000"],
		"parsed_query": {"access_token": ["x"]},
	}}
		with log._token_prefixes as github_prefixes
	{"op": "upsert", "path": "/input/attributes/request/http/path", "value": "[REDACTED]?[redacted]"} in m
	{"op": "upsert", "path": "/input/attributes/request/http/headers/:path", "value": "[REDACTED]?[redacted]"} in m
}

# Basic credentials that decode to a token, in a Check's string fields and in the parts walked
# after a look at their JSON text.
test_mask_basic_in_check_fields[note] if {
	basic := concat(" ", ["Basic", base64.encode("x:ghp_basicBASICbasicBASICbasic000000")])
	some note, tc in {
		"body": {"http": {"path": "/", "headers": {}, "body": basic}, "want": {"op": "upsert", "path": "/input/attributes/request/http/body", "value": "[REDACTED]"}},
		"id": {"http": {"path": "/", "headers": {}, "id": basic}, "want": {"op": "upsert", "path": "/input/attributes/request/http/id", "value": "[REDACTED]"}},
		"context extensions": {"http": {"path": "/", "headers": {}}, "ext": {"auth": basic}, "want": {"op": "upsert", "path": "/input/attributes/contextExtensions/auth", "value": "[REDACTED]"}},
	}
	attributes := object.union({"request": {"http": tc.http}}, {k: v | some k, v in {"contextExtensions": object.get(tc, "ext", null)}; v != null})
	tc.want in log.mask with input as {"path": "pat/envoy/response", "input": {"attributes": attributes}} with log._token_prefixes as github_prefixes
}

# A header sent as a list or an object to the gate's path through OPA's API.
test_mask_header_not_a_string[note] if {
	some note, value in {
		"a list": ["ghp_arrayARRAYarrayARRAYarray000000"],
		"an object": {"a": "ghp_arrayARRAYarrayARRAYarray000000"},
	}
	m := log.mask with input as {"path": "pat/envoy/response", "input": {"attributes": {"request": {"http": {"path": "/", "headers": {"x-forward": value}}}}}} with log._token_prefixes as github_prefixes
	m == {{"op": "upsert", "path": "/input/attributes/request/http/headers/x-forward", "value": "[REDACTED]"}}
}

# The code points of s, in order (ASCII only: one byte each).
_code_points(s) := [n |
	some i in numbers.range(0, count(s) - 1)
	n := _ascii[substring(s, i, 1)]
]

_ascii := {c: n | some n in numbers.range(32, 126); c := sprintf("%c", [n])}
