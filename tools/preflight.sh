#!/usr/bin/env bash
# Preflight for `make GOAL...`: before anything runs, check the system packages the goals need.
# Missing ones are installed with apt-get when we are root (what CI does); otherwise this prints
# one message naming them and the command that installs them, and exits 1 so nothing runs.
# Nothing is skipped: a test whose system package is missing would fail, not pass quietly.
#
#   bash tools/preflight.sh all        # `make`: npm (site), bubblewrap (grading sandbox)
#   bash tools/preflight.sh test       # `make test`: also chromium, postgresql and TeX Live (the PDF test)
#   bash tools/preflight.sh test-fast  # Python 3.11 only
#   bash tools/preflight.sh pdf        # `make pdf`: also TeX Live (xelatex, latexmk; ~300 MB, ~1.5 min)
set -euo pipefail

python=${PYTHON:-python3.11}
venv_python=.venv/bin/python

want_npm=0 want_bwrap=0 want_chromium=0 want_postgres=0 want_tex=0
for goal in "$@"; do
  case $goal in
    all) want_npm=1 want_bwrap=1 ;;
    site) want_npm=1 ;;
    grade|worker) want_bwrap=1 ;;
    test) want_npm=1 want_bwrap=1 want_chromium=1 want_postgres=1 want_tex=1 ;;   # tests/book/test_pdf.py
    bench) want_npm=1 want_bwrap=1 ;;
    pdf) want_npm=1 want_tex=1 ;;
  esac
done

missing=()   # Debian packages
why=()       # what each is for, in the same order
add() { missing+=("$1"); why+=("$1: $2"); }

if [ ! -x "$venv_python" ]; then
  if ! command -v "$python" >/dev/null; then
    add python3.11 "the interpreter .venv is made with"
    add python3.11-venv "python3.11 -m venv"
  elif ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    add python3.11-venv "python3.11 -m venv (Debian keeps ensurepip there)"
  fi
fi
if [ $want_npm = 1 ] && ! command -v npm >/dev/null; then
  command -v node >/dev/null || add nodejs "the site vendors MathJax and the widget JavaScript with npm"
  add npm "the site vendors MathJax and the widget JavaScript from the npm registry"
fi
if [ $want_bwrap = 1 ] && ! command -v bwrap >/dev/null; then
  add bubblewrap "the grading sandbox (bwrap)"
fi
if [ $want_chromium = 1 ] && [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null; then
  add chromium "the browser tests (Playwright drives Debian's chromium; no browser is downloaded)"
fi
# Playwright's driver is a node binary shipped in its wheel, linked against libatomic.so.1,
# which a minimal Debian lacks (the browser tests then die with "Connection closed while
# reading from the driver").
if [ $want_chromium = 1 ] && ! compgen -G '/usr/lib/*/libatomic.so.1' >/dev/null \
   && ! compgen -G '/lib/*/libatomic.so.1' >/dev/null; then
  add libatomic1 "Playwright's driver (the node binary in its wheel links libatomic.so.1)"
fi
# The PDF: Jupyter Book's LaTeX builder runs latexmk with xelatex (Unicode text, FreeFont),
# Sphinx's LaTeX packages (latex-recommended, latex-extra: fncychap, wrapfig, capt-of, ...).
if [ $want_tex = 1 ]; then
  command -v latexmk >/dev/null || add latexmk "make pdf runs LaTeX through latexmk"
  command -v xelatex >/dev/null || add texlive-xetex "make pdf typesets with xelatex"
  kpsewhich fncychap.sty >/dev/null 2>&1 \
    || add texlive-latex-extra "Sphinx's LaTeX packages (fncychap, wrapfig, needspace, ...)"
  kpsewhich tgtermes.sty >/dev/null 2>&1 || add texlive-fonts-recommended "the PDF's fonts (TeX Gyre, used by Sphinx)"
  kpsewhich xcolor.sty >/dev/null 2>&1 || add texlive-latex-recommended "LaTeX's standard packages"
  [ -e /usr/share/fonts/opentype/freefont/FreeSerif.otf ] \
    || add fonts-freefont-otf "xelatex's default fonts in Sphinx (FreeSerif, FreeSans, FreeMono)"
fi
if [ $want_postgres = 1 ] && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  add postgresql "the PostgreSQL gradebook test (initdb, pg_ctl)"
fi

[ ${#missing[@]} -eq 0 ] && exit 0

goals="make $*"
[ "$*" = all ] && goals=make
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ -z "${DESCENT_PREFLIGHT_INSTALLED:-}" ]; then
  echo "$goals: installing the missing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # TeX Live's recommends add a gigabyte the PDF does not use; the other packages keep theirs.
  tex=() rest=()
  for package in "${missing[@]}"; do
    case $package in latexmk|texlive-*|fonts-freefont-otf) tex+=("$package") ;; *) rest+=("$package") ;; esac
  done
  [ ${#rest[@]} -eq 0 ] || apt-get install -y -qq "${rest[@]}" >/dev/null
  [ ${#tex[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${tex[@]}" >/dev/null
  DESCENT_PREFLIGHT_INSTALLED=1 exec bash "$0" "$@"   # check again: installed is not enough
fi

{
  echo "error: $goals needs Debian packages that are not installed: ${missing[*]}"
  printf '  %s\n' "${why[@]}"
  [ -n "${DESCENT_PREFLIGHT_INSTALLED:-}" ] && echo "(apt-get install ran, yet they are still missing)"
  echo "Install them (run as root, $goals installs them itself):"
  echo "  sudo apt-get install ${missing[*]}"
  case " $* ${missing[*]} " in
    *python3.11*) ;;
    *" test "*) echo "or run the unit and oracle tests, which need none of them: make test-fast" ;;
  esac
  echo "Nothing was run."
} >&2
exit 1
