# Shared by scripts/crash-loop.sh, fuzz.sh and soak.sh: each is one test class of tests/Holdfast.Server.Tests run
# with settings from the environment. Source it from the repository root after the option parsing.
#
#   server_check_build NAME WORK        builds the test project (Release) into its usual folder, log in WORK
#   server_check_run WORK CLASS VAR=V…  runs the one test class with those variables; sets server_check_status
#
# Needs only the .NET SDK: it works from a clone or from an exported tree (`git archive HEAD | tar -x`).

server_check_build() {
  local name="$1" work="$2"
  echo "building (Release) …" >&2
  if ! dotnet build tests/Holdfast.Server.Tests -c Release -nologo > "$work/build.log" 2>&1; then
    tail -40 "$work/build.log" >&2
    echo "$name: the build failed" >&2
    exit 1
  fi
}

server_check_run() {
  local work="$1" class="$2"
  shift 2
  set +e
  env "$@" dotnet test tests/Holdfast.Server.Tests -c Release --no-build -nologo \
    --filter "FullyQualifiedName~Holdfast.Server.Tests.$class" --logger "console;verbosity=detailed" > "$work/test.log" 2>&1
  server_check_status=$?
  set -e
}
