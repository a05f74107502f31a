// pipe(8)'s master.cf command attributes (flags=, user=, directory=, chroot=, eol=,
// null_sender=, size=, argv=...) and the expansion of its argument vector with the
// delivery request's macros (${sender}, ${recipient}, ${nexthop}, ...), as Postfix's
// pipe.c: an argument that names a per-recipient macro (${recipient}, ${user},
// ${extension}, ${mailbox}, ${domain}, ${original_recipient}) becomes one argument per
// recipient. Pure, so the unit tests run it; pipe(8) itself is src/pipe.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "util/base/result.h"

namespace postern::mailbox {

// pipe(8) flags beside mail_copy()'s (CopyFlag), as Postfix's PIPE_OPT_*.
enum PipeFlag : unsigned {
    kPipeFoldUser = 1u << 16,    // u
    kPipeFoldHost = 1u << 17,    // h
    kPipeQuoteLocal = 1u << 18,  // q
    kPipeFinal = 1u << 19,       // X: "delivered" instead of "relayed"
};

struct PipeAttr {
    std::vector<std::string> command;  // argv=..., unexpanded
    std::string user, group;           // user=name[:group]
    unsigned flags = 0;                // CopyFlag | PipeFlag
    std::string exec_dir, chroot_dir;
    std::string eol = "\n";
    std::string null_sender = "MAILER-DAEMON";
    long size_limit = 0;  // 0: none
};

// Parses the attributes; the error is Postfix's fatal text ("unknown flag: x",
// "missing user= command-line attribute", ...). The user is not looked up here.
Result<PipeAttr> parse_pipe_attr(const std::vector<std::string>& args);

// C-style escapes of eol= (\n \r \t \a \b \f \v \\ \ddd), as Postfix's unescape().
std::string unescape(std::string_view text);

struct PipeRecipient {
    std::string address, orig;
};

// Macros that are the same for every recipient: sender (after null_sender), nexthop,
// size, queue_id, client_address, ... (missing names expand to "").
using PipeMacros = std::map<std::string, std::string>;

// The expanded argument vector. The error (an unknown macro name) is the warning
// Postfix logs; delivery is then deferred with "mail system configuration error".
// An argument with ${user} is left out for a recipient whose user part is empty.
Result<std::vector<std::string>> expand_pipe_argv(const std::vector<std::string>& command,
                                                  PipeMacros macros,
                                                  const std::vector<PipeRecipient>& recipients,
                                                  unsigned flags, std::string_view delimiters);

}  // namespace postern::mailbox
