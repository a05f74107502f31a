# Postern top-level Makefile (GNU make).
#
#   make            build everything into build/ (commands in build/sbin, daemons in
#                   build/libexec/postern)
#   make check      install missing packages, build, run unit + end-to-end tests
#   make run        install missing packages, build, start the embedded default instance
#   make asan       the same tests on an AddressSanitizer/UBSan build (build-asan/)
#   make fuzz       build and run the libFuzzer targets for a bounded time (needs clang)
#   make bench      run the benchmarks in bench/
#   make install    install under $(DESTDIR)$(PREFIX)
#
# Every folder under src/ other than util/ is one program; every .cc below src/util is
# part of the shared library. New files are picked up without editing this file.

CXX       ?= g++
BUILD     ?= build
PREFIX    ?= /usr/local
DESTDIR   ?=
SANITIZE  ?=
# GCC 12 reports false maybe-uninitialized warnings inside std::regex/std::function when
# sanitizers are on; the asan build turns that one warning off.
EXTRA_CXXFLAGS ?=
OPTFLAGS  ?= -O2 -g

# Programs that admins run go to sbin; everything else is a daemon under libexec.
COMMANDS  := postconf postmap postalias postern sendmail postdrop postqueue postsuper \
             postlog postcat
# name -> program it is a link to
LINKS     := newaliases:postalias mailq:sendmail
# daemon name -> daemon it is a link to (the program looks at its name: smtp runs as lmtp)
DAEMON_LINKS := lmtp:smtp

PKG_CFLAGS := $(shell pkg-config --cflags libmariadb 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs libmariadb libevent openssl libpcre2-8 libcares 2>/dev/null) \
              -levent_openssl -ldb -lsasl2 -lcrypt

CXXFLAGS  := -std=c++20 -Wall -Wextra -Werror $(OPTFLAGS) $(SANITIZE) -MMD -MP \
             $(EXTRA_CXXFLAGS) -Isrc $(PKG_CFLAGS) -DPOSTERN_PREFIX='"$(PREFIX)"'
LDFLAGS   := $(SANITIZE)
LDLIBS    := $(PKG_LIBS)

UTIL_SRCS := $(shell find src/util -name '*.cc' | sort)
UTIL_OBJS := $(UTIL_SRCS:%.cc=$(BUILD)/obj/%.o)
LIBUTIL   := $(BUILD)/obj/libpostern.a

PROG_DIRS := $(sort $(filter-out util,$(notdir $(patsubst %/,%,$(dir $(wildcard src/*/*.cc))))))
is_cmd     = $(filter $(1),$(COMMANDS))
prog_path  = $(if $(call is_cmd,$(1)),$(BUILD)/sbin/$(1),$(BUILD)/libexec/postern/$(1))
PROGRAMS  := $(foreach p,$(PROG_DIRS),$(call prog_path,$(p)))
LINKS     := $(foreach l,$(LINKS),$(if $(filter $(lastword $(subst :, ,$(l))),$(PROG_DIRS)),$(l)))
LINK_PATHS:= $(foreach l,$(LINKS),$(BUILD)/sbin/$(firstword $(subst :, ,$(l))))
DAEMON_LINKS := $(foreach l,$(DAEMON_LINKS),$(if $(filter $(lastword $(subst :, ,$(l))),$(PROG_DIRS)),$(l)))
DAEMON_LINK_PATHS := $(foreach l,$(DAEMON_LINKS),$(BUILD)/libexec/postern/$(firstword $(subst :, ,$(l))))

TEST_SRCS := $(shell find tests/unit -name '*.cc' | sort)
TEST_OBJS := $(TEST_SRCS:%.cc=$(BUILD)/obj/%.o)
TEST_BIN  := $(BUILD)/tests/unit_tests

ALL_OBJS  := $(UTIL_OBJS) $(TEST_OBJS)

.PHONY: all check run asan fuzz bench install clean deps unit e2e programs
.DEFAULT_GOAL := all

all: programs $(TEST_BIN)
programs: $(PROGRAMS) $(LINK_PATHS) $(DAEMON_LINK_PATHS)

$(BUILD)/obj/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(LIBUTIL): $(UTIL_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# One rule per program: its folder's objects plus the shared library.
define PROGRAM_RULE
$(1)_SRCS := $$(shell find src/$(1) -name '*.cc' | sort)
$(1)_OBJS := $$($(1)_SRCS:%.cc=$(BUILD)/obj/%.o)
ALL_OBJS  += $$($(1)_OBJS)
$(call prog_path,$(1)): $$($(1)_OBJS) $(LIBUTIL)
	@mkdir -p $$(dir $$@)
	$(CXX) $(LDFLAGS) -o $$@ $$($(1)_OBJS) $(LIBUTIL) $(LDLIBS)
endef
$(foreach p,$(PROG_DIRS),$(eval $(call PROGRAM_RULE,$(p))))

$(LINK_PATHS): $(BUILD)/sbin/%: | $(PROGRAMS)
	ln -sf $(lastword $(subst :, ,$(filter $*:%,$(LINKS)))) $@

$(DAEMON_LINK_PATHS): $(BUILD)/libexec/postern/%: | $(PROGRAMS)
	ln -sf $(lastword $(subst :, ,$(filter $*:%,$(DAEMON_LINKS)))) $@

$(TEST_BIN): $(TEST_OBJS) $(LIBUTIL)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) -o $@ $(TEST_OBJS) $(LIBUTIL) $(LDLIBS)

deps:
	@sh scripts/deps.sh

# The unit suite and the end-to-end suite; tests/run_all.sh prints the one summary line.
check: deps
	$(MAKE) all
	@sh tests/run_all.sh $(BUILD)

unit: $(TEST_BIN)
	$(TEST_BIN)

e2e: programs
	POSTERN_BUILD=$(abspath $(BUILD)) /usr/bin/python3 -m pytest -q tests/e2e

asan: deps
	$(MAKE) BUILD=build-asan OPTFLAGS='-O1 -g -fno-omit-frame-pointer' \
	    SANITIZE='-fsanitize=address,undefined -fno-sanitize-recover=undefined' \
	    EXTRA_CXXFLAGS=-Wno-maybe-uninitialized all
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 sh tests/run_all.sh build-asan

run: deps
	$(MAKE) all
	@sh scripts/run.sh $(abspath $(BUILD))

fuzz:
	@sh tests/fuzz/run.sh

bench: all
	@sh bench/run.sh $(abspath $(BUILD))

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/libexec/postern \
	    $(DESTDIR)/etc/postern $(DESTDIR)$(PREFIX)/share/man/man1 \
	    $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man8
	for p in $(filter $(BUILD)/sbin/%,$(PROGRAMS)); do install -m 755 $$p $(DESTDIR)$(PREFIX)/sbin/; done
	for p in $(filter $(BUILD)/libexec/%,$(PROGRAMS)); do install -m 755 $$p $(DESTDIR)$(PREFIX)/libexec/postern/; done
	for l in $(LINKS); do ln -sf $${l#*:} $(DESTDIR)$(PREFIX)/sbin/$${l%%:*}; done
	for l in $(DAEMON_LINKS); do ln -sf $${l#*:} $(DESTDIR)$(PREFIX)/libexec/postern/$${l%%:*}; done
	for f in conf/*; do [ -e $(DESTDIR)/etc/postern/$$(basename $$f) ] || install -m 644 $$f $(DESTDIR)/etc/postern/; done
	for s in 1 5 8; do for m in man/man$$s/*.$$s; do [ -e "$$m" ] && install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s/; done; done; true

clean:
	rm -rf build build-asan build-fuzz

-include $(ALL_OBJS:.o=.d)
