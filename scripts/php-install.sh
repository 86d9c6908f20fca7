#!/usr/bin/env bash
# make install / make uninstall: put the chat extension into this machine's PHP like any PHP
# extension, and enable it for the installed SAPIs.
#
#   scripts/php-install.sh install <path/to/libchat.so>
#   scripts/php-install.sh uninstall
#
# - The module goes to `php-config --extension-dir`/chat.so.
# - Debian/Ubuntu (/etc/php/<ver>/mods-available and phpenmod exist): writes
#   mods-available/chat.ini and runs phpenmod for each SAPI configured under /etc/php/<ver>/
#   (cli, fpm, apache2, ...), the way Debian's php-* packages do.
# - Elsewhere: writes chat.ini into `php-config --ini-dir` (e.g. the official Docker images'
#   /usr/local/etc/php/conf.d); if PHP has no scan dir, prints the php.ini lines to add.
# - An existing chat.ini is left alone: it may hold the admin's settings.
# - DESTDIR=/some/root stages the files under that root (for packaging) and changes nothing
#   in the running system.
# Honours PHP_CONFIG (default php-config), to install for one of several PHPs.
set -euo pipefail

action=${1:?usage: $0 install <libchat.so> | uninstall}
php_config=${PHP_CONFIG:-php-config}
destdir=${DESTDIR:-}

command -v "$php_config" >/dev/null || {
  echo "install: '$php_config' not found. Install the PHP development files (Debian: apt-get install php-dev) or set PHP_CONFIG." >&2
  exit 1
}
ext_dir=$("$php_config" --extension-dir)
php=$("$php_config" --php-binary)
version=$("$php_config" --version)
ver=${version%.*}                        # 8.2.36 -> 8.2
ini_dir=$("$php_config" --ini-dir 2>/dev/null || true)
debian_mods=/etc/php/$ver/mods-available

if [[ -d $debian_mods ]] && command -v phpenmod >/dev/null; then
  layout=debian
  ini_file=$debian_mods/chat.ini
elif [[ -n $ini_dir ]]; then
  layout=scandir
  ini_file=$ini_dir/chat.ini
else
  layout=none
  ini_file=
fi

# The SAPIs Debian has configured for this PHP version (each has /etc/php/<ver>/<sapi>/conf.d).
debian_sapis() {
  local d
  for d in /etc/php/"$ver"/*/conf.d; do
    [[ -d $d ]] && basename "$(dirname "$d")"
  done
}

need_writable() {
  local dir=$1
  mkdir -p "$dir" 2>/dev/null || true
  if [[ ! -w $dir ]]; then
    echo "install: cannot write to $dir. Run it as root: sudo make $action" >&2
    exit 1
  fi
}

ini_text() { # the module's settings with their defaults, read from the module itself
  local so=$1
  cat <<'HEAD'
; chat: realtime chat for PHP apps (PHP extension). Settings: docs/PHP_API.md.
; priority=20
extension=chat.so

; Every chat.* setting with its default. Uncomment to change it here, or set it per php-fpm
; pool (php_value[chat.redis_url] = ...), with php -d, or with ini_set() at runtime.
; chat.jwt_secret must equal the sidecar's CHAT_JWT_SECRET.
HEAD
  "$php" -n -d "extension=$so" -r 'foreach (ini_get_all("chat", false) as $k => $v) echo ";$k = $v\n";'
}

case $action in
install)
  so=${2:?usage: $0 install <libchat.so>}
  [[ -f $so ]] || { echo "install: $so does not exist; run make build first" >&2; exit 1; }
  # Refuse a module built for another PHP before it lands where that PHP would load it.
  if ! out=$("$php" -n -d "extension=$so" -r 'exit(extension_loaded("chat") ? 0 : 1);' 2>&1); then
    echo "install: $php cannot load $so:" >&2
    echo "$out" >&2
    echo "Rebuild for this PHP (make clean build), or set PHP_CONFIG to the PHP it was built for." >&2
    exit 1
  fi

  need_writable "$destdir$ext_dir"
  install -m 0644 "$so" "$destdir$ext_dir/chat.so"
  echo "install: $destdir$ext_dir/chat.so"

  if [[ $layout == none ]]; then
    echo "install: this PHP scans no conf.d directory. Add to your php.ini ($("$php" -r 'echo php_ini_loaded_file() ?: "none loaded";')):"
    ini_text "$so" | sed 's/^/    /'
    exit 0
  fi
  need_writable "$(dirname "$destdir$ini_file")"
  if [[ -e $destdir$ini_file ]]; then
    echo "install: kept the existing $destdir$ini_file"
  else
    ini_text "$so" >"$destdir$ini_file"
    echo "install: $destdir$ini_file"
  fi

  if [[ -n $destdir ]]; then
    [[ $layout == debian ]] && echo "install: staged under DESTDIR; enable it on the target with: phpenmod -v $ver chat"
    exit 0
  fi
  if [[ $layout == debian ]]; then
    for sapi in $(debian_sapis); do
      phpenmod -v "$ver" -s "$sapi" chat
      echo "install: enabled for $sapi (/etc/php/$ver/$sapi/conf.d/20-chat.ini)"
    done
  fi

  # Prove it: the CLI loads it, and so does php-fpm when this PHP has one.
  "$php" -r 'exit(extension_loaded("chat") ? 0 : 1);' || {
    echo "install: $php still does not load chat; check $ini_file" >&2
    exit 1
  }
  echo "install: $php loads chat $("$php" -r 'echo phpversion("chat");')"
  fpm=$(command -v "php-fpm$ver" || command -v php-fpm || true)
  if [[ -n $fpm ]]; then
    if "$fpm" -m 2>/dev/null | grep -qx chat; then
      echo "install: $fpm loads chat; restart it to pick it up (e.g. systemctl reload php$ver-fpm)"
    else
      echo "install: warning: $fpm does not load chat; add extension=chat.so to its php.ini" >&2
    fi
  fi
  ;;

uninstall)
  if [[ $layout == debian && -z $destdir && -e $ini_file ]]; then
    for sapi in $(debian_sapis); do
      phpdismod -v "$ver" -s "$sapi" chat
    done
  fi
  for f in "$destdir$ext_dir/chat.so" ${ini_file:+"$destdir$ini_file"}; do
    if [[ -e $f ]]; then
      rm -f "$f"
      echo "uninstall: removed $f"
    fi
  done
  ;;

*)
  echo "usage: $0 install <libchat.so> | uninstall" >&2
  exit 2
  ;;
esac
