// postconf's command line: Postfix's option letters, and its rules for which options
// combine (pcf_incompat_options / pcf_compat_options), with the same fatal texts.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace postern::postconf {

enum Mode : unsigned {
    kShowSaslServ = 1u << 0,   // -a
    kShowSaslClnt = 1u << 1,   // -A
    kExpDsnTempl = 1u << 2,    // -b
    kParamClass = 1u << 3,     // -C
    kShowDefs = 1u << 4,       // -d
    kEditConf = 1u << 5,       // -e
    kFoldLine = 1u << 6,       // -f
    kMasterFld = 1u << 7,      // -F
    kHideName = 1u << 8,       // -h
    kHideValue = 1u << 9,      // -H
    kShowLocks = 1u << 10,     // -l
    kShowMaps = 1u << 11,      // -m
    kMasterEntry = 1u << 12,   // -M
    kShowNondef = 1u << 13,    // -n
    kMainOver = 1u << 14,      // -o
    kMainParam = 1u << 15,     // -p
    kMasterParam = 1u << 16,   // -P
    kDumpDsnTempl = 1u << 17,  // -t
    kShowTls = 1u << 18,       // -T
    kShowEval = 1u << 19,      // -x
    kEditExcl = 1u << 20,      // -X
    kCommentOut = 1u << 21,    // -#
};

struct Options {
    unsigned mode = 0;
    unsigned param_classes = 7;           // -C: builtin 1, service 2, user 4
    std::optional<std::string> config_dir;  // -c
    std::vector<std::string> overrides;   // -o name=value
    std::string tls_arg;                  // -T
    int verbose = 0;
    std::vector<std::string> args;        // names, patterns or edits

    bool has(unsigned bits) const { return (mode & bits) != 0; }
};

// Parses argv; on a usage error logs Postfix's fatal text and exits 1.
Options parse_options(int argc, char** argv);

}  // namespace postern::postconf
