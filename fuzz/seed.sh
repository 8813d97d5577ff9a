#!/bin/sh
# Fills fuzz/corpus/TARGET/ with seed inputs from this repository's fleet files and,
# when present, the interop vectors (../shared/vectors beside the repository, as the
# tests use them, or $KEYS_VECTORS). Run it before `cargo +nightly fuzz run TARGET`;
# it only adds files.
set -eu
fuzz=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$fuzz")
vectors=${KEYS_VECTORS:-$repo/../shared/vectors}
corpus=$fuzz/corpus

# seed TARGET FILE...: copies each existing regular file, named by its content hash.
seed() {
	target=$1
	shift
	mkdir -p "$corpus/$target"
	for f in "$@"; do
		[ -f "$f" ] || continue
		cp "$f" "$corpus/$target/$(sha256sum <"$f" | cut -c1-16)"
	done
}

# seed_tagged TARGET BYTE FILE...: as seed, with one leading byte (octal) before each.
seed_tagged() {
	target=$1
	byte=$2
	shift 2
	mkdir -p "$corpus/$target"
	for f in "$@"; do
		[ -f "$f" ] || continue
		tmp=$corpus/$target/.seed
		{ printf "\\$byte"; cat "$f"; } >"$tmp"
		mv "$tmp" "$corpus/$target/$(sha256sum <"$tmp" | cut -c1-16)"
	done
}

# seed_text TARGET TEXT...: one seed per argument.
seed_text() {
	target=$1
	shift
	mkdir -p "$corpus/$target"
	for t in "$@"; do
		printf '%s' "$t" >"$corpus/$target/.seed"
		mv "$corpus/$target/.seed" "$corpus/$target/$(printf '%s' "$t" | sha256sum | cut -c1-16)"
	done
}

v=$vectors
set +f
# sops: the first byte picks the store (0 YAML, 1 JSON, 2 dotenv, 3 INI).
seed_tagged sops 000 "$v"/sops/*.yaml "$v"/upstream/sops-nix/*.yaml "$repo"/secrets/*/*.yaml \
	"$repo"/policies/*.yaml "$repo"/recipients/hosts/*.yaml
seed_tagged sops 001 "$v"/sops/*.json "$v"/sops/*.enc.bin
seed_tagged sops 002 "$v"/sops/*.env
seed_tagged sops 003 "$v"/sops/*.ini
seed policy "$repo"/policies/*.yaml
seed host "$repo"/recipients/hosts/*.yaml
seed recipient "$v"/keys/*.pub "$v"/keys/*.age-recipient "$v"/upstream/*/*.pub \
	"$v"/upstream/*/*/*.pub "$v"/upstream/ssh-to-age/keyscan.txt "$repo"/recipients/admins/*.pub \
	"$v"/keys/*[0-9] "$v"/keys/*-pem "$v"/keys/*.age-identity \
	"$v"/upstream/sops-nix/age-keys.txt "$v"/upstream/sops-nix/ssh-*key \
	"$v"/upstream/ssh-to-age/id_ed25519* "$v"/upstream/agenix/example_keys/* \
	"$repo"/tests/fixtures/*.age-identity "$repo"/tests/fixtures/hosts/*
seed_text secret_name bot/telegram-token nannuo-bot/config vps-x86/restic-password \
	hosts/vps-arm/ssh_host_ed25519_key me@host+1 ../x bot//x .hidden -rf "$(printf 'a\nb')" \
	secrets/bot/telegram-token.age secrets/x.yaml secrets/a/.b.env
seed_text policy "$(printf 'groups:\n  ops: [demo]\nrules:\n  - secrets: "hosts/**/ssh_host_ed25519_key"\n    format: age\n    armor: true\n    readers: [ops]\n  - secrets: "bot/{a,b}*"\n    format: sops-json\n    encrypted_regex: "^(data|pass)$"\n    mac_only_encrypted: true\n    readers: [admins, host:vps-arm, container:nannuo-bot]\nallow_private_keys:\n  - "tests/**"\n')"
seed_text host "$(printf 'ssh_key: %s\ncontainers:\n  a: {}\n  b:\n    ssh_key: %s\n' \
	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfGJPhTmEUhNRTXhlljX+/pWA7Q7nbJ0sZzDiIUM5O5 root@x" \
	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID7b5W3zOlAc2F1m0lpbwYirzCorBMPl7SoFsAjdOuA6")"
# check_staged: the first byte picks where the blob is staged (see its source).
for ext in age yaml json env ini bin; do
	n=$(case $ext in age) echo 0 ;; yaml) echo 1 ;; json) echo 2 ;; env) echo 3 ;; ini) echo 4 ;; bin) echo 5 ;; esac)
	files=""
	case $ext in
	age) files="$v/age/*.age $repo/secrets/*/*.age" ;;
	bin) files="$v/sops/*.enc.bin $v/sops/*.plain.bin" ;;
	*) files="$v/sops/*.$ext $repo/secrets/*/*.$ext" ;;
	esac
	# shellcheck disable=SC2086
	seed_tagged check_staged "00$n" $files
done
seed_tagged check_staged 010 "$repo"/secrets/keys.lock
seed_tagged check_staged 011 "$repo"/policies/*.yaml
seed_tagged check_staged 012 "$repo"/recipients/hosts/*.yaml
seed_tagged check_staged 013 "$v"/keys/ed25519-01 "$v"/keys/rsa-02-pem "$v"/keys/age-native-01.age-identity

for d in "$corpus"/*/; do
	echo "$(basename "$d"): $(find "$d" -type f | wc -l) seeds"
done
