# A throwaway certificate authority for TLS tests, in the current directory: ca.crt/ca.key,
# an untrusted other-ca.crt/other-ca.key, server.crt/server.key for 127.0.0.1 (server and
# client use), and `certificate NAME CA-CERT CA-KEY EXTENSIONS` for more (CN=NAME).
# The caller has sourced contrib/lib/common.sh.
# shellcheck shell=bash

quiet() { "$@" >/dev/null 2>&1 || die "failed: $*"; }
certificate() { # name ca-cert ca-key extensions
    quiet openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -subj "/CN=$1" -out "$1.csr"
    printf '%b' "$4" >"$1.ext"
    quiet openssl x509 -req -in "$1.csr" -CA "$2" -CAkey "$3" -CAcreateserial -days 2 -out "$1.crt" -extfile "$1.ext"
}
quiet openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -subj "/CN=coreos test CA" -days 2 -out ca.crt
quiet openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -subj "/CN=other CA" -days 2 -out other-ca.crt
certificate server ca.crt ca.key "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
