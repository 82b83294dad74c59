# METADATA
# title: Envoy ext_authz gate
# description: >-
#   Maps an HTTP request, as Envoy's ext_authz filter describes it (the input opa-envoy-plugin
#   builds), to the PAT decision's input (credential, resource, action, permission), asks
#   data.pat.decision, and turns the decision into Envoy's answer.
package pat.envoy

# METADATA
# description: The realm of the Basic challenge sent with every 401, so that git asks for credentials.
realm := "opa-pat"

_docs := "https://docs.github.com/rest"

_http := input.attributes.request.http

_headers := object.get(_http, "headers", {})

_method := upper(object.get(_http, "method", ""))

# GET and HEAD read, any other method writes: one lookup rather than two rules and a negation.
_action := object.get({"GET": "read", "HEAD": "read"}, _method, "write")

# Credentials -----------------------------------------------------------------------------------

# METADATA
# description: >-
#   The credential the request presents: `Authorization: Bearer <token>`, `token <token>`, or
#   Basic with the token as the password (any user name; a token given as the user name with an
#   empty password or the password x-oauth-basic also counts). Undefined when there is none or it
#   cannot be read.
credential := {"type": "pat", "token": token} if {
	authorization := trim_space(_headers.authorization)
	space := indexof(authorization, " ")
	space > 0
	token := _token(lower(substring(authorization, 0, space)), trim_space(substring(authorization, space + 1, -1)))
}

# The token carried by the scheme's credentials. The header is read in one rule and one call,
# rather than in rules for the header, the scheme and the credentials.
_token(scheme, credentials) := credentials if {
	scheme in {"bearer", "token"}
	credentials != ""
} else := _basic_token(credentials) if scheme == "basic"

_basic_token(encoded) := token if {
	base64.is_valid(encoded)
	decoded := base64.decode(encoded)
	i := indexof(decoded, ":")
	i >= 0
	user := substring(decoded, 0, i)
	password := substring(decoded, i + 1, -1)

	# Undefined when that leaves nothing.
	token := _basic_secret(user, password)
	token != ""
}

# The password; or the user name (a token as the user name) when the password is empty or GitHub's
# legacy "x-oauth-basic". A function rather than an object looked up, which would be built anew on
# every request. A user name that is itself a token, beside another token as the password, is read
# as no credential: the gate would decide on the password, and an upstream that takes the user
# name would act with a token no one decided on.
_basic_secret(user, password) := user if password in {"", "x-oauth-basic"}

else := password if not _another_token(user, password)

# Token-shaped: a known prefix, in any case, and at least 30 characters, as the decision-log mask
# reads tokens (docs/envoy.md). The length is asked first: user names are short.
_another_token(user, password) if {
	count(user) >= 30
	user != password
	some prefix in _token_prefixes
	startswith(lower(user), lower(prefix))
}

_token_prefixes := pat.token_prefixes()

# Routes ----------------------------------------------------------------------------------------

# The path's segments, without a trailing empty one ("/a/b/" -> ["a", "b"]). Undefined, so that no
# route covers the path, when a segment is "." or "..", also once decoded or inside a decoded
# segment ("%2e%2e", "a%2F..%2Fb"): GitHub's paths have none, and an upstream that resolves them
# (an Envoy without normalize_path, say) would serve another resource than the one decided on,
# as /repos/octo-org/app/contents/../../other/contents/x would be.
_path := _segments if not _dot_segment

# Membership tests rather than a regular expression over the joined path, which cost an uncached
# Check 4.6% more CPU and 5 allocations (BenchmarkCheckPolicy); these cost nothing measurable for
# the usual path, which has no decoded slash.
_dot_segment if {
	some segment in input.parsed_path
	segment in {".", ".."}
}

_dot_segment if {
	some segment in input.parsed_path
	contains(segment, "/")
	some part in split(segment, "/")
	part in {".", ".."}
}

_segments := array.slice(input.parsed_path, 0, count(input.parsed_path) - 1) if {
	input.parsed_path[count(input.parsed_path) - 1] == ""
} else := input.parsed_path

# REST paths may carry GitHub Enterprise Server's /api/v3 prefix.
_rest_path := array.slice(_path, 2, count(_path)) if {
	_path[0] == "api"
	_path[1] == "v3"
} else := _path

# A name: one or more of A-Z a-z 0-9 _ . -, but not "." or "..". One regex says both (a single
# character that is not a dot, two that are not both dots, or three and more), which spares
# evaluating a negation per name: ^[A-Za-z0-9_.-]+$ without "." and "..".
_name(s) if regex.match(`^(?:[A-Za-z0-9_-][A-Za-z0-9_.-]?|\.[A-Za-z0-9_-]|[A-Za-z0-9_.-]{3,})$`, s)

# Owner and repository names are compared in lower case, as GitHub compares them: a request for
# /repos/Octo-Org/App is a request for octo-org/app, whatever case the client chose.

# /repos/{owner}/{repo}/...
_route := route if {
	_rest_path[0] == "repos"
	owner := _rest_path[1]
	repo := _rest_path[2]
	_name(owner)
	_name(repo)
	rest := _endpoint(array.slice(_rest_path, 3, count(_rest_path)))
	route := _repo_route(lower(owner), lower(repo), rest)
	_repo_lenient_agrees(lower(owner), lower(repo), rest, route)
}

_repo_route(owner, repo, rest) := object.union({"resource": _repo_resource(owner, repo, rest, need.permission), "action": _action}, need) if {
	need := _need(_repo_permission(rest, _action))
}

# An upstream may read an endpoint's segments more leniently than GitHub does: a Java servlet
# container (Spring, Tomcat, Jetty) drops each segment's path parameters (merge;x is merge), Rails
# and Spring's suffix matching take a format off the last segment (merge.json is merge), and some
# trim trailing white space (merge%20). A request whose endpoint reads differently so is covered
# only when it needs the same either way: pulls/1/merge;x would otherwise be decided as a pull
# request's sub-resource (pull_requests) and served as the merge (contents). contents/README.md
# needs contents either way.
_repo_lenient_agrees(owner, repo, rest, route) if _lenient(rest) == rest

else if _repo_route(owner, repo, _lenient(rest)) == route

# The endpoint as a lenient upstream reads it: each segment cut at its first ";" (path parameters)
# and its first NUL (a C string ends there), trailing white space (Unicode's, as Go's TrimSpace
# reads it) taken off, the last segment cut at its first "." (Spring's suffix pattern matches
# merge.x.json as merge.*), and the segments this leaves empty dropped (merge/;x is merge/).
_lenient(rest) := [segment |
	some i, s in rest
	segment := _lenient_segment(s, i == (count(rest) - 1))
	segment != ""
]

_lenient_segment(s, true) := _cut(_without_params(s), ".")

_lenient_segment(s, false) := _without_params(s)

_without_params(s) := trim_right(_cut(_cut(s, ";"), "\u0000"), _trailing_space)

_cut(s, separator) := substring(s, 0, indexof(s, separator)) if contains(s, separator)

else := s

_trailing_space := " \t\n\u000b\f\r\u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"

# What a public repository does not show to everyone (its settings, hooks, keys, secrets and
# variables, security alerts, collaborators, invitations, teams, traffic, codespaces, a source
# import) is not the public
# floor's to read (rule 12): the gate marks such a read's resource hidden, so the token's own
# permission, approval and the access policy apply to it, and a personal access token (classic)
# needs public_repo (or repo) for it on a public repository, as on GitHub. (The POSTs GitHub's
# table counts as reads say so themselves: their need's "resource" is {"hidden": true}.)
_repo_resource(owner, repo, rest, permission) := {"owner": owner, "repository": repo, "hidden": true} if {
	_action == "read"
	_private_read(rest, permission)
} else := {"owner": owner, "repository": repo}

_private_read(_, permission) if permission in _private_permissions

# (Code scanning: its alerts are security_events, hidden above; CodeQL's databases and variant
# analyses take contents, and GitHub still asks a personal access token (classic) for
# security_events or public_repo to read them on a public repository: not the floor's either.)
_private_read(rest, _) if rest[0] in {"code-scanning", "collaborators", "invitations", "teams", "traffic", "keys", "hooks", "import"}

_private_permissions := {
	"actions_variables", "administration", "agent_secrets", "agent_variables", "code_quality", "codespaces",
	"codespaces_metadata", "codespaces_secrets", "copilot_agent_settings", "dependabot_secrets", "environments",
	"repository_hooks", "secret_scanning_alerts", "secrets", "security_events", "vulnerability_alerts",
}

# /orgs/{org}/..., read as leniently as repository endpoints (_repo_lenient_agrees).
_route := object.union({"resource": {"owner": lower(org)}, "action": _action}, _need(need)) if {
	_rest_path[0] == "orgs"
	org := _rest_path[1]
	_name(org)
	rest := _endpoint(array.slice(_rest_path, 2, count(_rest_path)))
	_org_name_read_alike(org, rest)
	need := _org_permission(lower(org), rest, _action)
	_org_lenient_agrees(lower(org), rest, need)
}

# /orgs/{org} ends with the name, whose format a lenient upstream would take off: acme-labs.json
# would be decided as an organization of that name (the defaults) and served as acme-labs. GitHub's
# organization names hold no ".", so such a last segment is not covered.
_org_name_read_alike(org, rest) if count(rest) > 0

else if not contains(org, ".")

_org_lenient_agrees(org, rest, need) if _lenient(rest) == rest

else if _org_permission(org, _lenient(rest), _action) == need

# What an endpoint needs: a permission name, or an object with "permission" and any of
#   "classic_scopes": the scopes a personal access token (classic) needs in place of those the
#     permission maps to (data.pat.decision's input.classic_scopes: GitHub's delete_repo, ...);
#   "also": more requirements, every one of which must be met (GitHub's "and");
#   "either": other requirements, any one of which will do instead (GitHub's "at least one of");
#   "resource": the resource of the first requirement, when not the path's owner (or repository),
#     or what to add to it: {"hidden": true} for a POST that GitHub's table counts as a read, so
#     that the public floor does not let everyone do it (object.union merges the two);
#   "action": the action of the first requirement, when GitHub's table gives another than the
#     method's (a read that takes write, a POST that takes read).
# A requirement in "also" or "either" is {"permission"}, with the route's resource and action
# unless it gives its own "resource" or "action", and its own "classic_scopes" if any.
_need(need) := {"permission": need} if is_string(need)

else := need

# Git smart HTTP: /{owner}/{repo}(.git)/info/refs?service=..., POST /{owner}/{repo}(.git)/git-*-pack
_route := {"resource": {"owner": lower(owner), "repository": _repo_name(repo)}, "action": action, "permission": "contents"} if {
	count(_path) == 4
	_path[2] == "info"
	_path[3] == "refs"
	owner := _path[0]
	repo := _path[1]
	_git_owner(owner)
	_action == "read"
	[service] := input.parsed_query.service
	action := {"git-upload-pack": "read", "git-receive-pack": "write"}[service]
}

_route := {"resource": {"owner": lower(owner), "repository": _repo_name(repo)}, "action": action, "permission": "contents"} if {
	count(_path) == 3
	[owner, repo, service] := _path
	_git_owner(owner)
	_method == "POST"
	action := {"git-upload-pack": "read", "git-receive-pack": "write"}[service]
}

# Git LFS (/{owner}/{repo}(.git)/info/lfs/...), as git-lfs calls it with the same credentials as git.
_route := {"resource": {"owner": lower(owner), "repository": _repo_name(repo)}, "action": action, "permission": "contents"} if {
	count(_path) > 4
	_path[2] == "info"
	_path[3] == "lfs"
	owner := _path[0]
	repo := _path[1]
	_git_owner(owner)
	action := _lfs_action(array.slice(_path, 4, count(_path)), _method)
}

# The batch API says in its JSON body whether objects are downloaded or uploaded. When Envoy does not
# forward the body (with_request_body), or cuts it short, the gate cannot tell, and asks for write: a
# read-only token is then refused rather than handed upload URLs. So does a body that says download
# only to some readers: one with "Operation": "upload" beside it (_body_values). Locks are listed (read), created,
# verified before a push and released (write).
_lfs_action(["objects", "batch"], "POST") := "read" if {
	input.parsed_body.operation == "download"
	_body_values("operation") == {"download"}
} else := "write"

_lfs_action(["locks"], method) := {"GET": "read", "POST": "write"}[method]

_lfs_action(["locks", "verify"], "POST") := "write"

_lfs_action(["locks", _, "unlock"], "POST") := "write"

# The first segments of REST paths are not owners of Git repositories.
_git_owner(owner) if {
	regex.match(`^(?:[A-Za-z0-9_-][A-Za-z0-9_.-]?|\.[A-Za-z0-9_-]|[A-Za-z0-9_.-]{3,})$`, owner) # _name(owner)
	not lower(owner) in {"repos", "orgs", "api"}
}

# A Git path's repository: the name without its .git suffix, undefined (so the path is not
# covered) unless what is left is a name: /octo-org/.git/... names no repository, and must not be
# decided as a request on the organization. A wiki ({repo}.wiki.git, a name GitHub keeps for
# wikis) is not covered either: no token names a wiki, and deciding it as an unknown, private
# repository would let every token that reaches all repositories push to it.
_repo_name(repo) := name if {
	name := trim_suffix(lower(repo), ".git")
	_name(name)
	not endswith(name, ".wiki")
}

# Fine-grained permissions of repository endpoints -----------------------------------------------

# The segments after the owner (and repository) that name the endpoint, split again at decoded
# slashes and without empty segments, as an upstream that decodes %2F or merges slashes would read
# them: ["pulls", "3%2Fmerge"] and ["pulls", "3", "", "merge"] are both ["pulls", "3", "merge"], a
# merge, which needs contents. Names that hold slashes (a branch, a ref, a file's path) span
# segments, which the rules below allow for.
_endpoint(rest) := [lower(segment) |
	some segment in split(concat("/", rest), "/")
	segment != ""
]

# One function, tried in order (an else chain costs one call; separate definitions are each
# evaluated). The repository itself: reading it needs metadata, changing or deleting it
# administration.
_repo_permission(rest, action) := "metadata" if {
	count(rest) == 0
	action == "read"
} else := {"permission": "administration", "classic_scopes": ["delete_repo"]} if {
	# Deleting a repository: a personal access token (classic) needs delete_repo, as on GitHub.
	count(rest) == 0
	_method == "DELETE"
} else := "administration" if {
	count(rest) == 0
} else := "administration" if {
	# A branch's protection. Branch names may hold slashes (feature/x), sent as they are or as
	# %2F: any segment after the branch's first that is "protection" counts.
	rest[0] == "branches"
	"protection" in array.slice(rest, 2, count(rest))
} else := {"permission": "workflows", "also": [{"permission": "contents"}]} if {
	# Changing a workflow file needs the workflows permission (classic: the workflow scope) and
	# contents, as GitHub asks, however the file's path is written: with %2F for its slashes, as
	# Octokit sends it, or with empty segments (see _endpoint).
	action == "write"
	array.slice(rest, 0, 3) == ["contents", ".github", "workflows"]
} else := permission if {
	# /commits/{ref}/status, /statuses, /check-runs, /check-suites; the ref may hold slashes.
	rest[0] == "commits"
	count(rest) > 2
	permission := _by_action(_commit_sub_permissions[rest[count(rest) - 1]], action)
} else := permission if {
	# Merging a pull request writes to the repository's contents (GitHub asks for contents: write);
	# a codespace made from a pull request is the codespaces permission's (classic: codespace).
	action == "write"
	rest[0] == "pulls"
	count(rest) == 3
	permission := {
		"merge": "contents",
		"codespaces": {"permission": "codespaces", "classic_scopes": ["codespace"]},
	}[rest[2]]
} else := {"permission": "pull_requests", "either": [{"permission": "contents"}]} if {
	# Reading one pull request: pull_requests or contents, as on GitHub (not the repository's
	# review comments, /pulls/comments, which take pull_requests alone).
	action == "read"
	rest[0] == "pulls"
	count(rest) == 2
	rest[1] != "comments"
} else := "issues" if {
	# What only issues have: an issue read on its own, the repository's issue events, reactions,
	# sub-issues, dependencies, reading field values and pinned comments take issues alone, as on
	# GitHub.
	rest[0] == "issues"
	_issues_only(rest, action)
} else := {"permission": "issues", "either": [{"permission": "pull_requests"}]} if {
	# A pull request is an issue: its comments, labels, assignees, milestones and field values (to
	# set them), and the repository's labels and milestones, take issues or pull_requests, as on
	# GitHub. Listing and creating issues (/issues alone) takes issues.
	_issue_like(rest)
} else := {"permission": "pages", "also": [{"permission": "administration"}]} if {
	# Creating, changing or deleting the Pages site: pages and administration, as on GitHub.
	action == "write"
	rest == ["pages"]
} else := permission if {
	# Environments: listing and reading them is the actions permission; creating, changing and
	# deleting one, or its deployment policies, administration (and reading the apps that may
	# provide its protection rules); its secrets and variables are the environments permission.
	rest[0] == "environments"
	permission := _environment_permission(rest, action)
} else := {"permission": "repository_hooks", "classic_scopes": ["admin:repo_hook", "public_repo", "repo"]} if {
	# Deleting a hook: a personal access token (classic) needs admin:repo_hook where
	# write:repo_hook creates and changes hooks (or repo; public_repo on a public repository).
	_method == "DELETE"
	rest[0] == "hooks"
	count(rest) == 2
} else := permission if {
	# Endpoints whose permission GitHub gives apart from their neighbours' (a set lookup for
	# every other request, not a try of every _exception).
	rest[0] in {
		"actions", "code-scanning", "forks", "hooks", "interaction-limits", "pages",
		"private-vulnerability-reporting", "rulesets", "secret-scanning", "security-advisories",
	}
	_exceptional(rest)
	permission := _exception(rest, action)
} else := permission if {
	# Two-segment endpoints with a permission of their own. The table is written here, not as a
	# rule: most requests get here, and a rule reference costs more than the literal. Code
	# quality's setup takes administration at write, also to read it; a repository's codespace
	# secrets take codespaces_secrets at write, also to read them; codespaces and their
	# configurations take, for a personal access token (classic), the codespace scope: as on
	# GitHub.
	permission := {
		"actions/organization-secrets": "secrets",
		"actions/organization-variables": "actions_variables",
		"actions/permissions": "administration",
		"actions/runners": "administration",
		"actions/secrets": "secrets",
		"actions/variables": "actions_variables",
		"agents/organization-secrets": "agent_secrets",
		"agents/organization-variables": "agent_variables",
		"agents/secrets": "agent_secrets",
		"agents/variables": "agent_variables",
		"code-quality/findings": "code_quality",
		"code-quality/setup": {"permission": "administration", "action": "write"},
		"code-scanning/default-setup": "administration",
		"codespaces/devcontainers": {"permission": "codespaces_metadata", "classic_scopes": ["codespace"]},
		"codespaces/machines": {"permission": "codespaces_metadata", "classic_scopes": ["codespace"]},
		"codespaces/new": {"permission": "codespaces", "action": "write", "classic_scopes": ["codespace"]},
		"codespaces/permissions_check": {"permission": "codespaces", "action": "write", "classic_scopes": ["codespace"]},
		"codespaces/secrets": {"permission": "codespaces_secrets", "action": "write"},
		"copilot/cloud-agent": "copilot_agent_settings",
		"dependabot/alerts": "vulnerability_alerts",
		"dependabot/secrets": "dependabot_secrets",
		"tags/protection": "administration",
	}[concat("/", array.slice(rest, 0, 2))]
} else := _by_action(repo_permissions[rest[0]], action)

_issue_like(rest) if {
	rest[0] == "issues"
	count(rest) > 1
}

_issues_only(rest, "read") if {
	count(rest) == 2
	rest[1] != "comments"
}

# An issue's field values are read with issues alone; pull_requests may set them too.
_issues_only(rest, "read") if {
	count(rest) > 2
	rest[2] == "issue-field-values"
}

_issues_only(rest, _) if "reactions" in rest

_issues_only(rest, _) if {
	count(rest) > 2
	rest[2] in {"sub_issues", "sub_issue", "parent", "dependencies"}
}

_issues_only(["issues", "comments", _, "pin"], _)

# Repository endpoints that GitHub's table ("Permissions required for fine-grained personal
# access tokens") does not give their neighbours' permission, by their first two segments (or
# their third: rulesets/{id}/history, security-advisories/{ghsa}/forks, hooks/{id}/pings).
# _exception is undefined for the others of these, which the tables below decide.
_exceptional(rest) if {
	concat("/", array.slice(rest, 0, 2)) in {
		"actions/runs", "actions/cache", "code-scanning/codeql", "code-scanning/alerts",
		"secret-scanning/push-protection-bypasses", "rulesets/rule-suites", "pages/health", "forks",
		"interaction-limits/pulls", "private-vulnerability-reporting",
	}
} else if {
	count(rest) > 2
	rest[2] in {"history", "forks", "pings", "tests"}
}

# Approving or rejecting a run's deployments into protected environments: deployments.
_exception(["actions", "runs", _, "pending_deployments"], "write") := "deployments"

# The cache's retention limit is a repository setting; its storage limit too, though reading it
# takes actions, as on GitHub.
_exception(["actions", "cache", "retention-limit"], _) := "administration"

_exception(["actions", "cache", "storage-limit"], "write") := "administration"

# CodeQL databases and variant analyses hold the repository's code, down to a variant
# analysis's repositories (code-scanning/codeql/variant-analyses/{id}/repos/{owner}/{repo}); an
# autofix commits to a branch; bypassing push protection lets a push through: contents.
_exception(rest, _) := "contents" if {
	rest[0] == "code-scanning"
	rest[1] == "codeql"
}

_exception(["code-scanning", "alerts", _, "autofix", "commits"], "write") := "contents"

_exception(["secret-scanning", "push-protection-bypasses"], "write") := "contents"

# Rule suites (the evaluations of rulesets) are administration; a ruleset's history takes
# administration at write, also to read it.
_exception(["rulesets", "rule-suites"], _) := "administration"

_exception(["rulesets", "rule-suites", _], _) := "administration"

_exception(["rulesets", id, "history"], _) := {"permission": "administration", "action": "write"} if id != "rule-suites"

_exception(["rulesets", id, "history", _], _) := {"permission": "administration", "action": "write"} if id != "rule-suites"

# The Pages site's health check: administration and pages, both at write.
_exception(["pages", "health"], "read") := {"permission": "administration", "action": "write", "also": [{"permission": "pages", "action": "write"}]}

# A fork copies the code: administration (on the new repository's side) and contents.
_exception(["forks"], "write") := {"permission": "administration", "also": [{"permission": "contents", "action": "read"}]}

# A temporary private fork of an advisory: administration and the advisory's read.
_exception(["security-advisories", _, "forks"], "write") := {
	"permission": "administration",
	"also": [{"permission": "repository_advisories", "action": "read"}],
}

_exception(["interaction-limits", "pulls", list], _) := {"permission": "administration", "action": "write"} if {
	list in {"bypass-list", "creation-cap"}
}

# Pinging a hook, or having it sent the latest push, takes repository_hooks at read (classic:
# read:repo_hook pings), as on GitHub; what a public repository's hooks are is still hidden.
_exception(["hooks", _, probe], "write") := {"permission": "repository_hooks", "action": "read", "resource": {"hidden": true}} if {
	probe in {"pings", "tests"}
}

# Whether private vulnerability reporting is on is shown to everyone (metadata).
_exception(["private-vulnerability-reporting"], "read") := "metadata"

_issue_like(rest) if rest[0] in {"labels", "milestones", "assignees"}

# METADATA
# description: >-
#   The fine-grained permission each repository endpoint needs, by the segment after
#   /repos/{owner}/{repo}/; an object gives one for reads and one for writes, each a permission
#   name or what the endpoint needs (a "permission" with classic scopes, say).
repo_permissions := {
	"actions": "actions",
	"assignees": "issues",
	"attestations": "attestations",
	"autolinks": "administration",
	"automated-security-fixes": "administration",
	"branches": "contents",
	"check-runs": "checks",
	"check-suites": "checks",
	"code-scanning": "security_events",
	"code-security-configuration": "administration",
	"codeowners": "contents",
	"codespaces": {
		"read": {"permission": "codespaces", "classic_scopes": ["codespace"]},
		"write": {"permission": "codespaces", "classic_scopes": ["codespace"]},
	},
	"collaborators": {"read": "metadata", "write": "administration"},
	"comments": {"read": "metadata", "write": "contents"},
	"commits": "contents",
	"activity": "contents",
	"community": "contents",
	"compare": "contents",
	"contents": "contents",
	"contributors": "metadata",
	"dependency-graph": "contents",
	"deployments": "deployments",
	"dispatches": "contents",
	"environments": "environments",
	"events": "metadata",
	"forks": {"read": "metadata", "write": "administration"},
	"git": "contents",
	"hash-algorithm": "metadata",
	"hooks": "repository_hooks",
	"immutable-releases": "administration",
	"import": "contents",
	"interaction-limits": "administration",
	"invitations": "administration",
	"issue-types": "metadata",
	"issues": "issues",
	"keys": "administration",
	"labels": "issues",
	"languages": "metadata",
	"license": {"read": "metadata", "write": "contents"},
	"merge-upstream": "contents",
	"merges": "contents",
	"milestones": "issues",
	"pages": "pages",
	"private-vulnerability-reporting": "administration",
	"projects": "repository_projects",
	"properties": {"read": "metadata", "write": "repository_custom_properties"},
	"pulls": "pull_requests",
	"readme": "contents",
	"releases": "contents",
	"rules": "metadata",
	"rulesets": {"read": "metadata", "write": "administration"},
	"secret-scanning": "secret_scanning_alerts",
	"security-advisories": "repository_advisories",
	"stargazers": "metadata",
	"stats": "metadata",
	"statuses": "statuses",
	"subscribers": "metadata",
	"tags": {"read": "metadata", "write": "contents"},
	"tarball": "contents",
	"teams": "administration",
	"topics": {"read": "metadata", "write": "administration"},
	"traffic": "administration",
	"transfer": "administration",
	"vulnerability-alerts": "administration",
	"zipball": "contents",
}

_environment_permission(rest, action) := "environments" if {
	rest[2] in {"secrets", "variables"}
} else := "administration" if {
	# The apps that could provide custom protection rules: administration, also to read them.
	array.slice(rest, 2, 4) == ["deployment_protection_rules", "apps"]
} else := {"read": "actions", "write": "administration"}[action]

_commit_sub_permissions := {
	"check-runs": "checks",
	"check-suites": "checks",
	# Creating a commit comment takes contents at read, as on GitHub; not on the public floor.
	"comments": {"read": "metadata", "write": {"permission": "contents", "action": "read", "resource": {"hidden": true}}},
	"pulls": "pull_requests",
	"status": "statuses",
	"statuses": "statuses",
}

# A table entry: one permission for both actions, or an object with one for each.
_by_action(permission, action) := permission if is_string(permission)

else := permission[action]

# An organization table's entry: one permission, or what an endpoint needs (_need), for both
# actions, or an object with one for each. (A function apart from _by_action, whose one more
# branch would cost the repository routes an allocation.)
_org_by_action(permission, action) := permission if is_string(permission)

else := permission if permission.permission

else := permission[action]

# Fine-grained permissions of organization endpoints --------------------------------------------

_org_permission(org, rest, action) := {"read": "metadata", "write": "organization_administration"}[action] if {
	count(rest) == 0
} else := {
	"resource": {"owner": lower(owner), "repository": lower(repo)}, "action": "write", "permission": "administration",
	"also": [{"resource": {"owner": org}, "action": "read", "permission": "members"}],
} if {
	# A team's access to a repository: administration on the repository and members of the
	# organization, as on GitHub. Reading it needs members alone.
	action == "write"
	count(rest) == 5
	rest[0] == "teams"
	rest[2] == "repos"
	owner := rest[3]
	repo := rest[4]
	_name(owner)
	_name(repo)
} else := {
	"permission": "organization_copilot_seat_management", "classic_scopes": _copilot_seat_scopes[action],
	"either": [{"permission": "organization_administration"}],
} if {
	# A member's Copilot seat, and codespaces, are not the members permission's. (Copilot seats
	# take organization_copilot_seat_management or organization_administration, as on GitHub;
	# a personal access token (classic) manage_billing:copilot, or read:org to read them and
	# admin:org to change them, as for copilot/billing.)
	count(rest) > 2
	rest[0] == "members"
	rest[2] == "copilot"
} else := {"permission": "organization_codespaces", "classic_scopes": ["admin:org"]} if {
	count(rest) > 2
	rest[0] == "members"
	rest[2] == "codespaces"
} else := {"permission": "administration", "classic_scopes": _new_repository_scopes} if {
	# Creating a repository: a personal access token (classic) needs repo, or public_repo for a
	# public one, as on GitHub, not an organization scope.
	action == "write"
	rest == ["repos"]
} else := permission if {
	# Two-segment endpoints with a permission of their own, as for repositories, with the classic
	# scopes GitHub names for them (hosted compute network configurations:
	# read:network_configurations to read them, write:network_configurations to change them). A
	# security feature turned on or off for every repository is POST
	# /orgs/{org}/{security_product}/{enable_all|disable_all}.
	permission := _org_by_action(
		{
			"actions/runner-groups": "organization_self_hosted_runners",
			"actions/runners": "organization_self_hosted_runners",
			"actions/secrets": "organization_secrets",
			"actions/variables": "organization_actions_variables",
			"advanced_security/disable_all": {"write": "organization_administration"},
			# GitHub Enterprise Cloud: listing push rule bypass requests takes the organization's
			# administration at write.
			"bypass-requests/push-rules": {"read": {"permission": "organization_administration", "action": "write"}},
			"advanced_security/enable_all": {"write": "organization_administration"},
			"agents/secrets": {"permission": "organization_agent_secrets", "classic_scopes": ["admin:org"]},
			"agents/variables": {"permission": "organization_agent_variables", "classic_scopes": ["admin:org"]},
			"code-scanning/alerts": "security_events",
			"code_scanning_default_setup/disable_all": {"write": "organization_administration"},
			"code_scanning_default_setup/enable_all": {"write": "organization_administration"},
			"codespaces": {"permission": "organization_codespaces", "classic_scopes": ["admin:org"]},
			"codespaces/access": {"permission": "organization_codespaces_settings", "classic_scopes": ["admin:org"]},
			"codespaces/secrets": {"permission": "organization_codespaces_secrets", "classic_scopes": ["admin:org"]},
			"dependabot/alerts": "vulnerability_alerts",
			"dependabot/repository-access": "organization_administration",
			"dependabot/secrets": "organization_dependabot_secrets",
			"dependabot_alerts/disable_all": {"write": "organization_administration"},
			"dependabot_alerts/enable_all": {"write": "organization_administration"},
			"dependabot_security_updates/disable_all": {"write": "organization_administration"},
			"dependabot_security_updates/enable_all": {"write": "organization_administration"},
			"dependency_graph/disable_all": {"write": "organization_administration"},
			"dependency_graph/enable_all": {"write": "organization_administration"},
			"secret-scanning/alerts": "secret_scanning_alerts",
			"secret-scanning/custom-patterns": "organization_administration",
			"secret-scanning/pattern-configurations": "organization_administration",
			"secret_scanning/disable_all": {"write": "organization_administration"},
			"secret_scanning/enable_all": {"write": "organization_administration"},
			"secret_scanning_push_protection/disable_all": {"write": "organization_administration"},
			"secret_scanning_push_protection/enable_all": {"write": "organization_administration"},
			"settings/network-configurations": {
				"read": {"permission": "organization_network_configurations", "classic_scopes": ["read:network_configurations"]},
				"write": {"permission": "organization_network_configurations", "classic_scopes": ["write:network_configurations"]},
			},
			"settings/network-settings": {"read": {"permission": "organization_network_configurations", "classic_scopes": ["read:network_configurations"]}},
		}[concat("/", array.slice(rest, 0, 2))],
		action,
	)
} else := permission if {
	# Endpoints deeper in a segment whose permission GitHub gives apart from the segment's (a set
	# lookup for every other request, not a try of every _org_exception).
	rest[0] in {"actions", "copilot", "copilot-spaces", "organization-roles", "properties", "team", "teams"}
	permission := _org_exception(rest, action)
} else := _org_by_action(org_permissions[rest[0]], action)

# The custom images of GitHub-hosted runners are not the organization's administration (classic:
# manage_runners:org).
_org_exception(rest, action) := {"permission": "organization_runner_custom_images", "classic_scopes": ["manage_runners:org"]} if {
	array.slice(rest, 0, 4) == ["actions", "hosted-runners", "images", "custom"]
} else := {"permission": "team_discussions", "classic_scopes": _discussion_scopes[action]} if {
	# A team's discussions and their reactions: team_discussions, not members (classic:
	# read:discussion or write:discussion).
	rest[0] == "teams"
	count(rest) > 2
	rest[2] == "discussions"
} else := {"permission": "members", "action": "write"} if {
	# A team's connection to an external group or to its identity provider's groups (GitHub
	# Enterprise Cloud): members at write, also to read it, as GitHub's table has it.
	rest[0] == "teams"
	count(rest) > 2
	rest[2] in {"external-groups", "team-sync"}
} else := _copilot_seat_read if {
	# The Copilot metrics of the organization or of one of its teams (GET copilot/metrics,
	# team/{team_slug}/copilot/metrics, closing down on GitHub) are read with the Copilot seats
	# or the organization's administration, as GitHub's table has them; only the usage reports
	# under copilot/metrics/reports are organization_copilot_metrics'.
	action == "read"
	_copilot_metrics_legacy(rest)
} else := permission if {
	# Copilot: seats (classic: manage_billing:copilot, or read:org to read them, admin:org to
	# change them), usage metrics, the cloud agent's settings and content exclusions, each a
	# permission of its own.
	rest[0] == "copilot"
	permission := _org_by_action(
		{
			"billing": {
				"read": _copilot_seat_read,
				"write": {
					"permission": "organization_copilot_seat_management", "classic_scopes": ["manage_billing:copilot", "admin:org"],
					"either": [{"permission": "organization_administration"}],
				},
			},
			"coding-agent": {"permission": "organization_copilot_agent_settings", "classic_scopes": ["admin:org"]},
			"content_exclusion": {"permission": "org_copilot_content_exclusion", "classic_scopes": ["admin:org"]},
			"metrics": {"read": {"permission": "organization_copilot_metrics", "classic_scopes": ["manage_billing:copilot", "read:org"]}},
		}[rest[1]],
		action,
	)
} else := {"permission": "organization_copilot_seat_management", "classic_scopes": ["admin:org"]} if {
	# A Copilot space's collaborators are managed with the Copilot seats, the space itself with
	# organization_copilot_spaces (org_permissions).
	rest[0] == "copilot-spaces"
	count(rest) > 2
	rest[2] == "collaborators"
} else := {"permission": "members", "classic_scopes": ["admin:org"]} if {
	# Assigning organization roles to teams and users, and listing who holds a role, is the members
	# permission's; the roles themselves are organization_custom_org_roles' (classic: admin:org).
	rest[0] == "organization-roles"
	_role_assignment(rest)
} else := {"permission": "organization_custom_org_roles", "classic_scopes": ["admin:org"]} if {
	rest[0] == "organization-roles"
} else := {"permission": "organization_custom_properties", "classic_scopes": _org_scopes[action]} if {
	# Custom properties: their values are read and set, their definitions (the schema) read, with
	# organization_custom_properties. Changing the schema takes it at admin, a level beyond the
	# decision's read and write: not covered, rather than allowed for write.
	rest[0] == "properties"
	_property_use(rest[1], action)
}

_copilot_seat_read := {
	"permission": "organization_copilot_seat_management", "classic_scopes": ["manage_billing:copilot", "read:org"],
	"either": [{"permission": "organization_administration"}],
}

_copilot_metrics_legacy(["copilot", "metrics"])

_copilot_metrics_legacy(["team", _, "copilot", "metrics"])

_role_assignment(rest) if rest[1] in {"teams", "users"}

else if {
	count(rest) == 3
	rest[2] in {"teams", "users"}
}

_property_use("values", _)

_property_use("schema", "read")

# The organization scopes GitHub asks of a personal access token (classic) for what an
# organization administers.
_org_scopes := {"read": ["read:org", "write:org", "admin:org"], "write": ["admin:org"]}

_copilot_seat_scopes := {"read": ["manage_billing:copilot", "read:org"], "write": ["manage_billing:copilot", "admin:org"]}

_discussion_scopes := {"read": ["read:discussion", "write:discussion"], "write": ["write:discussion"]}

# The classic scopes that create an organization repository: public_repo is enough only for a
# public one, which the gate knows only from a forwarded body that asks for no private or internal
# repository (GitHub's default is public); without the body it asks for repo.
_new_repository_scopes := ["repo", "public_repo"] if {
	is_object(input.parsed_body)
	every v in _body_values("private") { v == false }
	every v in _body_values("visibility") { v == "public" }
} else := ["repo"]

# The values of a JSON body's keys that are key in any case. Upstreams read a body's keys
# differently: Go's encoding/json matches them in any case (the last one wins), most others
# exactly. A body that says one thing under "operation" and another under "Operation" says both,
# so the gate believes it only when every spelling agrees. "Any case" is Unicode's: Go's
# bytes.EqualFold and Java's equalsIgnoreCase also take the long s (U+017F) for an s, the Kelvin
# sign (U+212A) for a k and, Java, the dotless i (U+0131) and the dotted capital I (U+0130) for an
# i. lower() maps the Kelvin sign and the dotted I; the other two are mapped here.
_body_values(key) := {v | some k, v in input.parsed_body; strings.replace_n({"ſ": "s", "ı": "i"}, lower(k)) == key}

# METADATA
# description: >-
#   The fine-grained permission each organization endpoint needs, by the segment after
#   /orgs/{org}/: a permission name, what the endpoint needs (an object with "permission" and,
#   say, classic scopes), or an object with one of these for reads and one for writes.
org_permissions := {
	"actions": "organization_administration",
	"artifacts": {"permission": "artifact_metadata", "classic_scopes": ["admin:org"]},
	"attestations": {"permission": "attestations", "classic_scopes": ["admin:org"]},
	# The audit log: a personal access token (classic) needs read:audit_log, as on GitHub.
	"audit-log": {"permission": "organization_administration", "classic_scopes": ["read:audit_log"]},
	# GitHub Enterprise Cloud's announcement banner.
	"announcement": {
		"read": {"permission": "organization_announcement_banners", "classic_scopes": ["read:org", "write:org", "admin:org"]},
		"write": {"permission": "organization_announcement_banners", "classic_scopes": ["admin:org"]},
	},
	"blocks": "organization_user_blocking",
	"campaigns": {"permission": "organization_campaigns", "classic_scopes": ["admin:org"]},
	"code-security": "organization_administration",
	# GitHub Enterprise Cloud: SAML SSO authorizations.
	"credential-authorizations": "organization_administration",
	# GitHub Enterprise Cloud: custom repository roles (custom_roles, fine_grained_permissions:
	# closing down) are read with organization_custom_roles or the organization's administration
	# (classic: admin:org or repo), changed with organization_custom_roles (admin:org).
	"custom-repository-roles": _custom_roles,
	"custom_roles": _custom_roles,
	"copilot-spaces": {"permission": "organization_copilot_spaces", "classic_scopes": ["admin:org"]},
	# GitHub Enterprise Cloud: external groups and identity provider groups are listed with
	# members at write.
	"external-group": {"read": {"permission": "members", "action": "write"}},
	"external-groups": {"read": {"permission": "members", "action": "write"}},
	"failed_invitations": "members",
	"fine_grained_permissions": {"read": _custom_roles.read},
	"hooks": "organization_hooks",
	"insights": {"permission": "organization_api_insights", "classic_scopes": ["admin:org"]},
	"installations": "organization_administration",
	"interaction-limits": "organization_administration",
	"invitations": "members",
	"issue-fields": {
		"read": {"permission": "issue_fields", "classic_scopes": ["read:org", "write:org", "admin:org"]},
		"write": {"permission": "issue_fields", "classic_scopes": ["admin:org"]},
	},
	"issue-types": {
		"read": {"permission": "issue_types", "classic_scopes": ["read:org", "write:org", "admin:org"]},
		"write": {"permission": "issue_types", "classic_scopes": ["admin:org"]},
	},
	"members": "members",
	"memberships": "members",
	"organization-fine-grained-permissions": {"permission": "organization_custom_org_roles", "classic_scopes": ["admin:org"]},
	"outside_collaborators": "members",
	"personal-access-token-requests": {"permission": "organization_personal_access_token_requests", "classic_scopes": ["admin:org"]},
	"personal-access-tokens": {"permission": "organization_personal_access_tokens", "classic_scopes": ["admin:org"]},
	"private-registries": {"permission": "organization_private_registries", "classic_scopes": ["admin:org"]},
	"projects": "organization_projects",
	# Projects (projectsV2, compared in lower case): classic tokens need read:project or project.
	"projectsv2": {
		"read": {"permission": "organization_projects", "classic_scopes": ["read:project", "project"]},
		"write": {"permission": "organization_projects", "classic_scopes": ["project"]},
	},
	"public_members": "members",
	"repos": {"read": "metadata", "write": "administration"},
	"repository-fine-grained-permissions": {"read": _custom_roles.read},
	# The organization's rulesets and rule suites take organization administration at write, also
	# to read them, as on GitHub.
	"rulesets": {"permission": "organization_administration", "action": "write"},
	# The repository security advisories of the whole organization: repository_advisories at
	# write, also to list them, as on GitHub.
	"security-advisories": {"permission": "repository_advisories", "action": "write"},
	"security-managers": "organization_administration",
	"settings": "organization_administration",
	"team-sync": {"read": {"permission": "members", "action": "write"}},
	"teams": "members",
}

_custom_roles := {
	"read": {
		"permission": "organization_custom_roles", "classic_scopes": ["admin:org", "repo"],
		"either": [{"permission": "organization_administration", "classic_scopes": ["admin:org", "repo"]}],
	},
	"write": {"permission": "organization_custom_roles", "classic_scopes": ["admin:org"]},
}

# The decision ----------------------------------------------------------------------------------

# METADATA
# description: >-
#   The input handed to data.pat.decision: credential, resource, action and permission;
#   undefined when the request carries no readable credential or its path is not covered.
mapped := m if {
	not _refused
	m := _mapped
}

_mapped := {
	"credential": credential,
	"resource": _route.resource,
	"action": _route.action,
	"permission": _route.permission,
} if {
	not _route.classic_scopes
} else := {
	"credential": credential,
	"resource": _route.resource,
	"action": _route.action,
	"permission": _route.permission,
	"classic_scopes": _route.classic_scopes,
}

# METADATA
# description: >-
#   data.pat.decision for the mapped request. A request without a credential, with one that
#   cannot be read, or on a path the gate does not cover is denied here (401, 401, 404).
#   The mapped request is tried first: when it is defined, none of the denials below applies (it
#   needs the header, the credential and the route), so the usual request evaluates no negation.
decision := d if {
	d := _first
	not _route.also
	not _route.either
} else := _also_decision(_first) if {
	_route.also
	mapped
} else := _either_decision(_first) if {
	# Only the policy's own answer to the mapped request: a request the gate refuses (a method
	# override, a token in the query) gets its refusal, whatever another requirement would say.
	mapped
} else := _first

# An endpoint with more than one requirement (_need): the first decides a denial; when it allows,
# every requirement in "also" must allow too, and the first that does not decides.
_also_decision(first) := first if {
	first.allow != true
} else := denied[0] if {
	denied := [d |
		some requirement in _route.also
		d := data.pat.decision with input as _requirement_input(requirement)
		d.allow != true
	]
	count(denied) > 0
} else := first

# When the first requirement denies, any requirement in "either" that allows decides; when none
# does, the first's denial stands.
_either_decision(first) := first if {
	first.allow == true
} else := allowed[0] if {
	allowed := [d |
		some requirement in _route.either
		d := data.pat.decision with input as _requirement_input(requirement)
		d.allow == true
	]
	count(allowed) > 0
} else := first

_requirement_input(requirement) := {
	"credential": credential,
	"resource": object.get(requirement, "resource", _route.resource),
	"action": object.get(requirement, "action", _route.action),
	"permission": requirement.permission,
	# The classic scopes the requirement names, if any (null: none, as data.pat.decision reads
	# it), so that an alternative permission does not let a personal access token (classic)
	# through with the scopes that permission maps to where the endpoint names others.
	"classic_scopes": object.get(requirement, "classic_scopes", null),
}

_first := d if {
	d := data.pat.decision with input as mapped
} else := _deny(401, "Bad credentials", _query_token_message, _docs) if {
	_query_token
} else := _deny(401, "Requires authentication", "the request carries no credential", _docs) if {
	_no_authorization
} else := _deny(401, "Bad credentials", "the Authorization header carries no readable personal access token", _docs) if {
	not credential
} else := _deny(d.status, d.message, d.message, d.documentation_url) if {
	# Rules 1-2 come before the path, as on GitHub, which authenticates before it routes: a
	# token that is malformed, unknown, expired or revoked is 401 wherever it is sent.
	_unrouted
	d := data.pat.credential_denial with input as {"credential": credential}
} else := _deny(400, _method_override_message, _method_override_message, _docs) if {
	_method_override
} else := _deny(404, "Not Found", sprintf("%s %s is not a path the PAT gate covers", [_method, split(object.get(_http, "path", ""), "?")[0]]), _docs) if {
	# The path without its query, which may carry a credential (?access_token=): a reason is
	# logged as it is.
	not _route
}

_unrouted if not _route

_unrouted if _method_override

# What the gate refuses whatever the route: a request that asks the upstream to take it for
# another method, or that carries a token in its query.
_refused if _method_override

_refused if _query_token

# A method override (X-HTTP-Method-Override and its kin, a _method parameter or body key, as
# Google's APIs, Rails, Laravel, Symfony and Express's method-override read them) asks the
# upstream to serve a POST as a DELETE, say: the gate decides on the method Envoy sees, so it
# refuses a request that names another (400). One that names the request's own method is read as
# none. The decision cache's key holds these headers (docs/envoy.md, "Decision cache").
_method_override if {
	some name in _override_headers
	_another_method(_headers[name])
}

# The override headers, each also spelt with "_" for any "-" (Envoy passes such names on, and a
# CGI-style upstream reads X_HTTP_METHOD as X-HTTP-Method): looked up one by one, which costs a
# Check nothing, where reading every header's name would.
_override_headers := [
	"x-http-method-override",
	"x-http-method_override",
	"x-http_method-override",
	"x-http_method_override",
	"x_http-method-override",
	"x_http-method_override",
	"x_http_method-override",
	"x_http_method_override",
	"x-http-method",
	"x-http_method",
	"x_http-method",
	"x_http_method",
	"x-method-override",
	"x-method_override",
	"x_method-override",
	"x_method_override",
]

_method_override if {
	some name, values in input.parsed_query
	_override_parameter(name)
	some value in values
	_another_method(value)
}

# A query split at ";" too, as some upstreams split it (the parsed query splits at "&" only).
_method_override if {
	some [name, value] in _semicolon_query
	_override_parameter(name)
	_another_method(value)
}

# _method, in any case, also as an array's (_method[], _method[0]): a query parser in the style of
# PHP's or of Node's qs reads those as a list, whose first value some overrides take.
_override_parameter(name) if lower(name) == "_method"

_override_parameter(name) if startswith(lower(name), "_method[")

_method_override if {
	is_object(input.parsed_body)
	some name, value in input.parsed_body
	lower(name) == "_method"
	_another_method(value)
}

# A REST body the gate did not read as a JSON object (a form, multipart, JSON it declines to parse:
# a key twice, junk after it, a lone UTF-16 surrogate escape, bytes that are not UTF-8) may carry
# _method for an upstream that reads it (Rails, Laravel): one that holds the word, in any case,
# each character also percent-encoded (a form's %5Fmethod) or escaped (JSON's \u005fmethod), is
# refused. Git's bodies (packs) are not looked into.
_method_override if {
	_rest_path[0] in {"repos", "orgs"}
	not is_object(input.parsed_body)
	regex.match(`(?i)(?:_|%5f|\\u005f)(?:m|%[46]d|\\u00[46]d)(?:e|%[46]5|\\u00[46]5)(?:t|%[57]4|\\u00[57]4)(?:h|%[46]8|\\u00[46]8)(?:o|%[46]f|\\u00[46]f)(?:d|%[46]4|\\u00[46]4)`, _body_text)
}

_body_text := _http.body if {
	_http.body != ""
} else := base64.decode(_http.rawBody)

# The query's name=value pairs split at "&" and ";", each decoded; only for a target with a ";".
_semicolon_query := [[urlquery.decode(name), urlquery.decode(value)] |
	target := object.get(_http, "path", "")
	contains(target, ";")
	contains(target, "?")
	some pair in regex.split(`[&;]`, substring(target, indexof(target, "?") + 1, -1))
	[name, value] := _name_value(pair)
]

_name_value(pair) := [substring(pair, 0, i), substring(pair, i + 1, -1)] if {
	i := indexof(pair, "=")
	i >= 0
} else := [pair, ""]

_another_method(value) if not is_string(value)

_another_method(value) if upper(trim_space(value)) != _method

_method_override_message := "Method overrides (X-HTTP-Method-Override, _method) are not accepted: send the request with its own method"

# A token in the query: GitHub no longer reads one (access_token), but Gitea and GitLab read
# token, access_token and private_token, and an upstream that takes it over the Authorization
# header would act with a token no one decided on. Any query parameter whose name holds "token",
# in any case, is refused (401), as the decision-log mask masks them.
_query_token if {
	some name, _ in input.parsed_query
	contains(lower(name), "token")
}

_query_token if {
	some [name, _] in _semicolon_query
	contains(lower(name), "token")
}

_query_token_message := "a token in the query string is not accepted: send it in the Authorization header"

# An Authorization header that is empty or blank carries no credential, as no header does: Envoy
# keeps it as "" in a header_map and may leave it out of the headers map.
_no_authorization if not _headers.authorization

_no_authorization if trim_space(_headers.authorization) == ""

_deny(status, message, reason, doc) := {
	"allow": false,
	"status": status,
	"reasons": [reason],
	"message": message,
	"documentation_url": doc,
}

_allowed if object.get(decision, "allow", null) == true

# The answer ------------------------------------------------------------------------------------

# METADATA
# description: >-
#   Envoy's answer, in opa-envoy-plugin's form. Allowed: the token's id and user for the
#   upstream, and GitHub's token expiration header for the client. Denied: the decision's status,
#   a JSON body {"message", "documentation_url"}, and a Basic challenge on 401. It carries the
#   decision itself for the decision log (Envoy ignores it): referring to it costs nothing, where
#   a filtered copy cost a tenth of a Check's allocations.
# entrypoint: true
response := {
	"allowed": true,
	"headers": _upstream_headers,
	"response_headers_to_add": _client_headers,
	"decision": decision,
} if {
	_allowed
} else := {
	"allowed": false,
	"http_status": _status,
	"headers": _denial_headers,
	"body": json.marshal({"message": _message, "documentation_url": _documentation_url}),
	"decision": decision,
}

_status := status if {
	status := object.get(decision, "status", null)
	is_number(status)
} else := 403

# The decision's fields are read with object.get(decision, name, null): null when absent, and the
# gate works with any decision object (the type checker knows the decision's keys and refuses a ref
# to a missing one). Written out rather than through a helper function, which would cost a call
# per field.

_message := message if {
	message := object.get(decision, "message", null)
	is_string(message)
} else := message if {
	message := _default_messages[_status]
} else := "Forbidden"

_documentation_url := url if {
	url := object.get(decision, "documentation_url", null)
	is_string(url)
} else := _docs

_default_messages := {
	401: "Bad credentials",
	403: "Resource not accessible by personal access token",
	404: "Not Found",
}

# The headers for the upstream: the token's id and its user, each when the decision gives it. One
# complete rule, tried case by case: cheaper to evaluate than a partial object's rules.
_upstream_headers := {"x-pat-token-id": id, "x-pat-user": user} if {
	id := _id_string(object.get(decision, "token_id", null))
	user := _user_header
} else := {"x-pat-token-id": id} if {
	id := _id_string(object.get(decision, "token_id", null))
} else := {"x-pat-user": user} if {
	user := _user_header
} else := {}

_user_header := user if {
	user := object.get(decision, "user", null)
	is_string(user)
	user != ""
}

_id_string(id) := id if is_string(id)

else := format_int(id, 10) if is_number(id)

# GitHub's expiration header for the client, when the token expires (a complete rule, as above).
_client_headers := {"GitHub-Authentication-Token-Expiration": expiration} if {
	expiration := time.format([_expires_at_ns, "UTC", "2006-01-02 15:04:05 UTC"])
} else := {}

# The decision's expiry when it gives one; otherwise the token's own record.
_expires_at_ns := ns if {
	ns := object.get(decision, "expires_at_ns", null)
	is_number(ns)
} else := ns if {
	not "expires_at_ns" in object.keys(decision)
	ns := pat.token(credential.token).expires_at_ns
	is_number(ns)
}

_denial_headers := object.union(
	{"content-type": "application/json; charset=utf-8"},
	_challenge,
)

_challenge := {"www-authenticate": sprintf(`Basic realm="%s"`, [realm])} if _status == 401

else := {}
