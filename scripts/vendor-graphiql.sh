#!/usr/bin/env bash
# Re-creates gql_app/static/graphiql/ from the npm registry, so the GraphiQL page never
# loads anything from a CDN and the vendored files can be reproduced byte for byte.
#
#   scripts/vendor-graphiql.sh           download, verify and (re)write the vendored files
#   scripts/vendor-graphiql.sh --check   download and verify, then fail if the vendored
#                                        files differ from what the tarballs hold
#
# Needs npm (to ask the registry for each tarball's address and integrity), curl, tar,
# openssl and base64.
set -euo pipefail
cd "$(dirname "$0")/.."

dest="gql_app/static/graphiql"
mode="write"
case "${1:-}" in
  "") ;;
  --check) mode="check" ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# package@version, the sha512 integrity the registry published for it when it was chosen,
# then pairs of "path in the tarball" and "name in $dest". The integrity is pinned here as
# well as asked for: a registry that answered differently would be refused, not followed.
assets=(
  "react@18.2.0|sha512-/3IjMdb2L9QbBdWiW5e3P2/npwMBaU9mHCSCUzNln0ZCYbcfTsGbTJrU/kGemdH2IWmB2ioZ+zkxtmq6g09fGQ==|package/umd/react.production.min.js=react.production.min.js package/LICENSE=LICENSE.react"
  "react-dom@18.2.0|sha512-6IMTriUmvsjHUjNtEDudZfuDQUoWXVxKHhlEGSk81n4YFS+r/Kl99wXiwlVXtPBtJenozv2P+hxDsw9eA7Xo6g==|package/umd/react-dom.production.min.js=react-dom.production.min.js package/LICENSE=LICENSE.react-dom"
  "graphiql@3.8.3|sha512-cuPDYtXVKV86Pu5PHBX642Odi/uVEE2y1Jxq5rGO/Qy1G2lRp7ZZ7a/T30RzxhuLSWo9zUbzq0P3U49//H0Ugw==|package/graphiql.min.js=graphiql.min.js package/graphiql.min.css=graphiql.min.css package/LICENSE=LICENSE.graphiql"
)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

differs=0
for entry in "${assets[@]}"; do
  IFS="|" read -r spec pinned files <<<"$entry"

  published="$(npm view "$spec" dist.integrity)"
  if [ "$published" != "$pinned" ]; then
    echo "$spec: the registry reports integrity $published, expected $pinned" >&2
    exit 1
  fi
  tarball_url="$(npm view "$spec" dist.tarball)"

  tarball="$work/${spec//[@\/]/_}.tgz"
  curl --fail --silent --show-error --location --output "$tarball" "$tarball_url"
  actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 | tr -d '\n')"
  if [ "$actual" != "$pinned" ]; then
    echo "$spec: $tarball_url hashes to $actual, expected $pinned" >&2
    exit 1
  fi
  echo "$spec: $tarball_url matches $pinned"

  unpacked="$work/${spec//[@\/]/_}"
  mkdir -p "$unpacked"
  tar -xzf "$tarball" -C "$unpacked"
  for pair in $files; do
    source_path="$unpacked/${pair%%=*}"
    target="$dest/${pair#*=}"
    if [ "$mode" = "check" ]; then
      if ! cmp -s "$source_path" "$target"; then
        echo "$target differs from ${pair%%=*} in $spec" >&2
        differs=1
      fi
    else
      mkdir -p "$dest"
      install -m 0644 "$source_path" "$target"
    fi
  done
done

if [ "$differs" -ne 0 ]; then
  echo "The vendored GraphiQL files are not the pinned ones; run $0 to restore them." >&2
  exit 1
fi
[ "$mode" = "check" ] && echo "The vendored GraphiQL files match the pinned packages."
exit 0
