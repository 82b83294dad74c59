# METADATA
# title: PAT policy
# description: Decides whether a personal access token may reach an organization's resource.
package pat

default allow := false
