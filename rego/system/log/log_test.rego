package system.log_test

import data.system.log

test_mask_direct_query_token if {
	log.mask == {"/input/credential/token"} with input as {"input": {"credential": {"type": "pat", "token": "ghp_x"}}}
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
	log.mask == tc.want with input as {"input": {"attributes": {"request": {"http": {"path": "/", "headers": tc.headers}}}}}
}

test_mask_token_in_query if {
	log.mask == {
		"/input/parsed_query/access_token",
		{"op": "upsert", "path": "/input/attributes/request/http/path", "value": "/repos/o/r?[redacted]"},
	} with input as {"input": {
		"attributes": {"request": {"http": {"path": "/repos/o/r?a=1&access_token=ghp_x", "headers": {}}}},
		"parsed_query": {"a": ["1"], "access_token": ["ghp_x"]},
	}}
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
}

test_mask_raw_headers_and_builtin_cache if {
	log.mask == {"/input/attributes/request/http/headerMap", "/nd_builtin_cache/pat.token"} with input as {
		"input": {"attributes": {"request": {"http": {"path": "/", "headerMap": {"headers": [{"key": "authorization", "rawValue": "eA=="}]}}}}},
		"nd_builtin_cache": {"pat.token": {"[\"ghp_x\"]": {}}},
	}
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
}
