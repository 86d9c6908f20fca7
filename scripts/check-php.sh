#!/usr/bin/env bash
# Run by `make build` before cargo: refuses a PHP the extension does not support, with a message
# that says what to do. (ext-php-rs's build script would refuse PHP < 8.1 too, but only as
# "PHP version php80 is below minimum supported version" deep in cargo's output.)
# Usage: scripts/check-php.sh <min major.minor> <max major.minor>
# Honours PHP_CONFIG and PHP like ext-php-rs's build does; ext/build.rs repeats these checks
# for builds that do not go through make.
set -euo pipefail
min=$1 max=$2
php_config=${PHP_CONFIG:-php-config}
php=${PHP:-php}

if ! version=$("$php_config" --version 2>/dev/null); then
  echo "check-php: cannot run '$php_config'. Install the PHP development files (Debian: apt-get install php-dev)," >&2
  echo "           or set PHP_CONFIG to the php-config of the PHP to build the extension for." >&2
  exit 1
fi
if ! cli=$("$php" -n -r 'echo PHP_VERSION;' 2>/dev/null); then
  echo "check-php: cannot run '$php'. Install the PHP CLI (Debian: apt-get install php-cli), or set PHP." >&2
  exit 1
fi

mm() { local IFS=.; read -r a b _ <<<"$1"; echo "$((a * 100 + ${b%%[!0-9]*}))"; }
if [[ $(mm "$version") != $(mm "$cli") ]]; then
  echo "check-php: '$php' is PHP $cli but '$php_config' is PHP $version; they must be the same PHP." >&2
  echo "           Set PHP and PHP_CONFIG (Debian: PHP=/usr/bin/php8.x PHP_CONFIG=/usr/bin/php-config8.x)." >&2
  exit 1
fi
if (($(mm "$version") < $(mm "$min") || $(mm "$version") > $(mm "$max"))) && [[ -z ${CHAT_ALLOW_UNSUPPORTED_PHP:-} ]]; then
  echo "check-php: PHP $version is not supported. The chat extension supports PHP $min to $max." >&2
  echo "           Point PHP_CONFIG and PHP at a supported PHP, or set CHAT_ALLOW_UNSUPPORTED_PHP=1 to try anyway." >&2
  exit 1
fi
echo "check-php: building for PHP $version ($("$php" -n -r 'echo PHP_ZTS ? "ZTS" : "NTS";'))"
