// What master and its children share: the fixed descriptor numbers a child inherits and
// the busy/idle status messages it writes back. As in Postfix (master_proto.h), all
// children of one service share one status pipe; a message is small and fixed-size so
// each write(2) is atomic (below PIPE_BUF) and messages of concurrent children never mix.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <optional>

namespace postern::daemon {

// Descriptors a child finds open when master execs it.
inline constexpr int kStatusFd = 5;  // write end of the service's status pipe
inline constexpr int kListenFd = 6;  // first listening endpoint; -s N says how many

// The environment variable that carries the child's generation (reload counter).
inline constexpr const char* kGenerationEnv = "GENERATION";

enum class Availability : int { Taken = 0, Available = 1 };

struct StatusMessage {
    pid_t pid = 0;
    unsigned generation = 0;
    Availability avail = Availability::Available;
};

inline constexpr size_t kStatusMessageSize = 12;
using StatusBytes = std::array<unsigned char, kStatusMessageSize>;

// Fixed little-endian layout: pid (4), generation (4), availability (4).
StatusBytes encode_status(const StatusMessage& message);
// nullopt when the availability field holds neither 0 nor 1.
std::optional<StatusMessage> decode_status(const StatusBytes& bytes);

// Writes one status message to `fd`; false when master has gone away.
bool notify_master(int fd, unsigned generation, Availability avail);

}  // namespace postern::daemon
