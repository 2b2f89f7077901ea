#!/usr/bin/env bash
# Lay out a build-capable CmdStan from a CmdStan source tarball (its makefile, make/, src/cmdstan, lib/CLI11)
# plus what the httpstan wheel in the virtualenv already ships, then `make build`. Called by
# install_cmdstan.sh (read it first); prints one line and returns 0 when it cannot.
# Usage: assemble_cmdstan.sh PYTHON TARBALL DEST LOG JOBS NICE DONE_MARK
#
# Where the pieces go (CmdStan's makefiles expect stan/ and stan/lib/stan_math/ inside the tree):
#   DEST/{makefile,make,src/cmdstan,lib}   from the tarball
#   DEST/stan/src/stan                      a copy of httpstan's include/stan without math/ (identical to
#                                           stan-dev/stan's src/stan of the same version)
#   DEST/stan/lib/stan_math/...             links to httpstan's Stan Math, Eigen, Boost, SUNDIALS, TBB
#   DEST/stan/lib/stan_math/make/*          three small makefiles written here: Stan Math's own are not
#                                           in the wheel (Linux, gcc/clang, STAN_THREADS; no OpenCL/MPI)
#   DEST/bin/stanc                          httpstan's stanc (also as bin/linux-stanc, which CmdStan's
#                                           make/stanc restores bin/stanc from after `make clean-all`)
# The links are absolute: if the virtualenv moves, delete DEST and run set-up again.
set -u
PY=$1 SRC=$2 DEST=$3 LOG=$4 JOBS=$5 NICE=$6 DONE_MARK=$7

fail() { echo "setup: CmdStan assembly failed: $1 (log: $LOG); the stan engine will use PyStan only"; exit 0; }

HS=$("$PY" -c 'import httpstan, os; print(os.path.dirname(httpstan.__file__))' 2>/dev/null) \
  || fail "httpstan is not installed in $PY's environment"
INC=$HS/include

# "#define NAME_MAJOR 2" ... -> 2.35.0
header_version() { grep -E "define $1_(MAJOR|MINOR|PATCH) " "$2" | awk '{print $3}' | paste -sd.; }

check_versions() {
  STAN_VER=$(header_version STAN "$INC/stan/version.hpp")
  TAR_VER=$(tar -xzOf "$SRC" makefile 2>/dev/null | awk '/^CMDSTAN_VERSION :=/{print $3}')
  STANC_VER=$("$HS/stanc" --version 2>/dev/null | awk '{print $2}')
  [ -n "$TAR_VER" ] || fail "$SRC holds no CmdStan makefile"
  [ "$TAR_VER" = "$STAN_VER" ] || fail "$SRC is CmdStan $TAR_VER but httpstan ships Stan $STAN_VER"
  [ "$STANC_VER" = "v$STAN_VER" ] || fail "httpstan's stanc is $STANC_VER, not v$STAN_VER"
  EIGEN_VER=$(grep -E 'define EIGEN_(WORLD|MAJOR|MINOR)_VERSION' "$INC/Eigen/src/Core/util/Macros.h" \
    | awk '{print $3}' | paste -sd.)
  BOOST_VER=$(awk '/define BOOST_VERSION /{v=$3; printf "%d.%d.%d", v/100000, (v/100)%1000, v%100}' \
    "$INC/boost/version.hpp")
  SUNDIALS_VER=$(awk '/define SUNDIALS_VERSION /{gsub("\"", "", $3); print $3}' "$INC/sundials/sundials_config.h")
  TBB_VER=$(grep -E 'define TBB_VERSION_(MAJOR|MINOR) ' "$INC/tbb/tbb_stddef.h" | awk '{print $3}' | paste -sd.)
}

lay_out_sources() {
  rm -rf "$DEST" && mkdir -p "$DEST/stan/src" "$DEST/stan/lib/rapidjson_1.1.0" "$DEST/bin" || return 1
  tar -xzf "$SRC" -C "$DEST" || return 1
  # a real copy: CmdStan writes build products beside these headers
  cp -r "$INC/stan" "$DEST/stan/src/stan" && rm -rf "$DEST/stan/src/stan/math" "$DEST/stan/src/stan/math.hpp"
  cp -r "$INC/rapidjson" "$DEST/stan/lib/rapidjson_1.1.0/" || return 1
  cp "$HS/stanc" "$DEST/bin/stanc" && cp "$HS/stanc" "$DEST/bin/linux-stanc" && chmod +x "$DEST/bin/"*stanc
}

link_math_libraries() {
  local m=$DEST/stan/lib/stan_math sun=$DEST/stan/lib/stan_math/lib/sundials_$SUNDIALS_VER
  mkdir -p "$m/stan" "$m/make" "$m/lib/eigen_$EIGEN_VER" "$m/lib/boost_$BOOST_VER" "$sun/include" "$sun/lib" \
    "$m/lib/tbb_$TBB_VER/include" "$m/lib/tbb" || return 1
  ln -s "$INC/stan/math" "$m/stan/math" && ln -s "$INC/stan/math.hpp" "$m/stan/math.hpp"
  ln -s "$INC/Eigen" "$m/lib/eigen_$EIGEN_VER/Eigen" && ln -s "$INC/unsupported" "$m/lib/eigen_$EIGEN_VER/unsupported"
  ln -s "$INC/boost" "$m/lib/boost_$BOOST_VER/boost"
  local d
  for d in cvodes idas kinsol nvector sundials sunlinsol sunmatrix sunmemory sunnonlinsol sundials_debug.h \
           stan_sundials_printf_override.hpp; do
    ln -s "$INC/$d" "$sun/include/$d" || return 1
  done
  ln -s "$HS"/lib/libsundials_*.a "$sun/lib/" || return 1
  ln -s "$INC/tbb" "$m/lib/tbb_$TBB_VER/include/tbb"
  cp "$HS/lib/libtbb.so.2" "$m/lib/tbb/libtbb.so.2" && ln -s libtbb.so.2 "$m/lib/tbb/libtbb.so"
}

write_math_makefiles() {
  local m=$DEST/stan/lib/stan_math/make
  # compiler_flags: what CmdStan's makefile includes from Stan Math to learn the flags, include paths and
  # the TBB link line. Library directories are relative to $(MATH), as in Stan Math's own file.
  cat > "$m/compiler_flags" <<EOF
# Written by hbench's scripts/assemble_cmdstan.sh in place of Stan Math's make/compiler_flags (not shipped
# by the httpstan wheel). Linux with gcc or clang; STAN_THREADS and STAN_NO_RANGE_CHECKS; no OpenCL or MPI.
findfiles = \$(strip \$(foreach d,\$(wildcard \$(addsuffix *,\$(1))),\$(call findfiles,\$(d)/,\$(2)) \$(wildcard \$(d)/\$(2))))
OS := \$(shell uname -s)
ifneq (\$(OS),Linux)
  \$(error this CmdStan was assembled for Linux only)
endif
LIBRARY_SUFFIX ?= .so
EXE ?=
CXX_TYPE ?= other
CXX_MAJOR ?= \$(shell \$(CXX) -dumpversion 2>&1 | cut -d'.' -f1)
CXX_MINOR ?= \$(shell \$(CXX) -dumpversion 2>&1 | cut -d'.' -f2)
O ?= 3
EIGEN ?= \$(MATH)lib/eigen_$EIGEN_VER
BOOST ?= \$(MATH)lib/boost_$BOOST_VER
SUNDIALS ?= \$(MATH)lib/sundials_$SUNDIALS_VER
TBB ?= \$(MATH)lib/tbb_$TBB_VER
TBB_BIN ?= \$(MATH)lib/tbb
INC_SUNDIALS ?= -I \$(SUNDIALS)/include
INC ?= \$(INC_FIRST) -I \$(if \$(MATH),\$(MATH),.) -I \$(EIGEN) -I \$(BOOST) \$(INC_SUNDIALS)
CPPFLAGS_BOOST ?= -DBOOST_DISABLE_ASSERTS
CXXFLAGS_LANG ?= -std=c++17
CXXFLAGS_WARNINGS ?= -Wno-sign-compare -Wno-ignored-attributes
ifeq (gcc,\$(CXX_TYPE))
  CXXFLAGS_OS ?= -pthread
  CXXFLAGS_WARNINGS += -Wno-class-memaccess
endif
ifeq (clang,\$(CXX_TYPE))
  LDLIBS_OS ?= -lpthread
endif
CXXFLAGS_OS += -D_REENTRANT
ifdef STAN_OPENCL
  \$(error STAN_OPENCL is not supported by this CmdStan assembly)
endif
ifdef STAN_MPI
  \$(error STAN_MPI is not supported by this CmdStan assembly)
endif
ifdef STAN_THREADS
  CXXFLAGS_THREADS ?= -DSTAN_THREADS
endif
ifdef STAN_NO_RANGE_CHECKS
  CPPFLAGS_NO_RANGE_CHECKS ?= -DSTAN_NO_RANGE_CHECKS
endif
TBB_BIN_ABSOLUTE_PATH = \$(abspath \$(TBB_BIN))
TBB_ABSOLUTE_PATH = \$(abspath \$(TBB))
TBB_LIBRARIES ?= tbb
TBB_TARGETS ?= \$(addprefix \$(TBB_BIN)/lib,\$(addsuffix \$(LIBRARY_SUFFIX).2,\$(TBB_LIBRARIES)))
CXXFLAGS_TBB ?= -I \$(TBB)/include
LDFLAGS_TBB ?= -Wl,-L,"\$(TBB_BIN_ABSOLUTE_PATH)" -Wl,-rpath,"\$(TBB_BIN_ABSOLUTE_PATH)"
LDLIBS_TBB ?=
CXXFLAGS += \$(CXXFLAGS_LANG) \$(CXXFLAGS_OS) \$(CXXFLAGS_WARNINGS) \$(CXXFLAGS_EIGEN) \$(CXXFLAGS_THREADS) \$(CXXFLAGS_TBB) -O\$(O) \$(INC)
CPPFLAGS += \$(CPPFLAGS_LANG) \$(CPPFLAGS_OS) \$(CPPFLAGS_WARNINGS) \$(CPPFLAGS_BOOST) \$(CPPFLAGS_EIGEN) \$(CPPFLAGS_NO_RANGE_CHECKS) \$(CPPFLAGS_TBB)
LDFLAGS += \$(LDFLAGS_LANG) \$(LDFLAGS_OS) \$(LDFLAGS_TBB)
LDLIBS += \$(LDLIBS_LANG) \$(LDLIBS_OS) \$(LDLIBS_TBB)
.PHONY: print-compiler-flags
print-compiler-flags:
	@echo 'CXX=\$(CXX) CXXFLAGS=\$(CXXFLAGS) CPPFLAGS=\$(CPPFLAGS) LDFLAGS=\$(LDFLAGS) LDLIBS=\$(LDLIBS)'
EOF
  cat > "$m/dependencies" <<'EOF'
# Written by hbench's scripts/assemble_cmdstan.sh: how CmdStan writes make-dependency (.d) files.
DEPTARGETS ?= -MT $(patsubst %.d,%.o,$@) -MT $@
DEPFLAGS ?= -M -E -MG -MP -MF $@ $(DEPTARGETS)
EOF
  cat > "$m/libraries" <<EOF
# Written by hbench's scripts/assemble_cmdstan.sh: SUNDIALS and TBB are prebuilt in the httpstan wheel
# (linked or copied into this tree), so there is nothing to build and nothing to clean.
SUNDIALS_CVODES := \$(SUNDIALS)/lib/libsundials_cvodes.a
SUNDIALS_IDAS := \$(SUNDIALS)/lib/libsundials_idas.a
SUNDIALS_KINSOL := \$(SUNDIALS)/lib/libsundials_kinsol.a
SUNDIALS_NVECSERIAL := \$(SUNDIALS)/lib/libsundials_nvecserial.a
SUNDIALS_TARGETS ?= \$(SUNDIALS_NVECSERIAL) \$(SUNDIALS_CVODES) \$(SUNDIALS_IDAS) \$(SUNDIALS_KINSOL)
\$(SUNDIALS)/lib/%.a:
	@echo 'prebuilt library \$@ is missing: delete this CmdStan and run make setup again'; exit 1
\$(TBB_BIN)/libtbb.so.2:
	@echo 'prebuilt library \$@ is missing: delete this CmdStan and run make setup again'; exit 1
.PHONY: clean-libraries clean-sundials clean-math
clean-libraries clean-sundials clean-math:
	@echo '(SUNDIALS and TBB are prebuilt; nothing to clean)'
EOF
  echo 'PRECOMPILED_HEADERS=false' > "$DEST/make/local"
}

build() {  # CmdStan's main.o and its tools, then one example model compiled and run as a smoke test
  ( cd "$DEST" && nice -n "$NICE" make -j"$JOBS" build \
    && nice -n "$NICE" make examples/bernoulli/bernoulli \
    && ./examples/bernoulli/bernoulli sample num_samples=200 data file=examples/bernoulli/bernoulli.data.json \
         output file="$DEST/examples/bernoulli/output.csv" refresh=0 )
}

t0=$(date +%s)
echo "setup: assembling CmdStan in $DEST from $SRC and the httpstan wheel (log: $LOG) ..."
check_versions
: > "$LOG"
{ lay_out_sources && link_math_libraries && write_math_makefiles; } >>"$LOG" 2>&1 || fail "laying out the tree"
build >>"$LOG" 2>&1 || fail "make build"
touch "$DEST/$DONE_MARK"
echo "setup: CmdStan $STAN_VER built in $DEST in $(( $(date +%s) - t0 )) s"
