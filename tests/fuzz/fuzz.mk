# Builds the libFuzzer targets: every tests/fuzz/fuzz_*.cc linked against the src/util
# sources compiled with clang and coverage instrumentation into $(BUILD)/.
# Driven by tests/fuzz/run.sh (make fuzz); not part of the main build.
# make's built-in CXX (g++) would win over ?=, so replace only that default.
ifeq ($(origin CXX),default)
CXX      := clang++
endif
BUILD    ?= build-fuzz
SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined
PKG_CFLAGS := $(shell pkg-config --cflags libmariadb 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs libmariadb libevent openssl libpcre2-8 2>/dev/null) \
              -levent_openssl -ldb -lsasl2 -lcrypt
CXXFLAGS := -std=c++20 -O1 -g -fno-omit-frame-pointer $(SAN) -fsanitize=fuzzer-no-link \
            -MMD -MP -Isrc -Itests/fuzz $(PKG_CFLAGS) -DPOSTERN_PREFIX='"/usr/local"'

UTIL_SRCS := $(shell find src/util -name '*.cc' | sort)
UTIL_OBJS := $(UTIL_SRCS:%.cc=$(BUILD)/obj/%.o)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.cc))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.cc=$(BUILD)/%)
LIB       := $(BUILD)/obj/libpostern-fuzz.a

all: $(FUZZ_BINS)

$(BUILD)/obj/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(LIB): $(UTIL_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(LIB)
	$(CXX) $(SAN) -fsanitize=fuzzer -o $@ $< $(LIB) $(PKG_LIBS)

.PHONY: all
-include $(UTIL_OBJS:.o=.d) $(FUZZ_SRCS:%.cc=$(BUILD)/obj/%.d)
