#include "postconf/options.h"

#include <unistd.h>

#include <cstring>

#include "util/base/strings.h"
#include "util/log/log.h"

namespace postern::postconf {
namespace {

// Option letters in the order Postfix names them in its messages.
constexpr struct {
    const char* name;
    unsigned bit;
} kOptionNames[] = {
    {"-a", kShowSaslServ}, {"-A", kShowSaslClnt}, {"-b", kExpDsnTempl}, {"-C", kParamClass},
    {"-d", kShowDefs},     {"-e", kEditConf},     {"-f", kFoldLine},    {"-F", kMasterFld},
    {"-h", kHideName},     {"-H", kHideValue},    {"-l", kShowLocks},   {"-m", kShowMaps},
    {"-M", kMasterEntry},  {"-n", kShowNondef},   {"-o", kMainOver},    {"-p", kMainParam},
    {"-P", kMasterParam},  {"-t", kDumpDsnTempl}, {"-T", kShowTls},     {"-x", kShowEval},
    {"-X", kEditExcl},     {"-#", kCommentOut},
};

constexpr unsigned kMajorModes = kShowSaslServ | kShowSaslClnt | kExpDsnTempl | kShowLocks | kShowMaps |
                                 kDumpDsnTempl | kMainParam | kMasterEntry | kMasterFld | kMasterParam |
                                 kShowTls;
constexpr unsigned kEditAny = kEditConf | kCommentOut | kEditExcl;

// Sets of options of which at most one may be given.
constexpr unsigned kIncompatible[] = {
    kMajorModes,
    kShowDefs | kEditConf | kShowNondef | kCommentOut | kEditExcl,
    kFoldLine | kEditAny,
    kShowEval | kEditAny,
    kMainOver | kShowDefs | kEditAny,
    kHideName | kEditAny | kHideValue,
};

// Each major mode (and -C) with the modifiers it accepts.
constexpr struct {
    unsigned option;
    unsigned allowed;
} kCompatible[] = {
    {kShowSaslServ, 0},
    {kShowSaslClnt, 0},
    {kExpDsnTempl, 0},
    {kShowLocks, 0},
    {kShowMaps, 0},
    {kShowTls, 0},
    {kDumpDsnTempl, 0},
    {kMainParam, kEditAny | kFoldLine | kHideName | kParamClass | kShowEval | kShowDefs | kShowNondef |
                     kMainOver | kHideValue},
    {kMasterEntry, kEditAny | kFoldLine | kMainOver | kShowEval},
    {kMasterFld, kEditConf | kFoldLine | kHideName | kMainOver | kShowEval | kHideValue},
    {kMasterParam, kEditConf | kEditExcl | kFoldLine | kHideName | kMainOver | kShowEval | kHideValue},
    {kParamClass, kMainParam | kShowDefs | kShowNondef},
};

std::string option_names(unsigned mask) {
    std::string out;
    for (const auto& o : kOptionNames) {
        if (!(mask & o.bit)) continue;
        if (!out.empty()) out += ' ';
        out += o.name;
    }
    return out;
}

[[noreturn]] void usage(const char* progname) {
    log::fatal("usage: %s [-a (server SASL types)] [-A (client SASL types)] [-b (bounce templates)]"
               " [-c config_dir] [-c param_class] [-d (parameter defaults)] [-e (edit configuration)]"
               " [-f (fold lines)] [-F (master.cf fields)] [-h (no names)] [-H (no values)]"
               " [-l (lock types)] [-m (map types)] [-M (master.cf)] [-n (non-default parameters)]"
               " [-o name=value (override parameter value)] [-p (main.cf, default)]"
               " [-P (master.cf parameters)] [-t (bounce templates)]"
               " [-T compile-version|run-version|public-key-algorithms] [-v (verbose)]"
               " [-x (expand parameter values)] [-X (exclude)] [-# (comment-out)] [name...]",
               progname);
}

unsigned parse_param_class(const char* arg) {
    unsigned out = 0;
    for (std::string_view word : split_tokens(arg, ", \t\r\n")) {
        if (iequals(word, "builtin")) out |= 1;
        else if (iequals(word, "service")) out |= 2;
        else if (iequals(word, "user")) out |= 4;
        else if (iequals(word, "all")) out |= 7;
        else log::fatal("-C option: unknown name \"%.*s\" in \"%s\"", static_cast<int>(word.size()),
                        word.data(), arg);
    }
    return out;
}

void check_combinations(unsigned mode) {
    for (unsigned set : kIncompatible) {
        unsigned given = mode & set;
        if (given & (given - 1)) log::fatal("specify one of %s", option_names(given).c_str());
    }
    for (const auto& c : kCompatible) {
        unsigned excess = mode & ~(c.option | c.allowed);
        if ((mode & c.option) && excess)
            log::fatal("with option %s, do not specify %s", option_names(c.option).c_str(),
                       option_names(excess).c_str());
    }
}

}  // namespace

Options parse_options(int argc, char** argv) {
    Options opt;
    int ch;
    // "+": stop at the first non-option, as Postfix's GETOPT does on Linux. -E is in
    // Postfix 3.7's option string without a meaning: it gets the usage message.
    while ((ch = getopt(argc, argv, "+aAbc:C:deEfFhHlmMno:pPtT:vxX#")) > 0) {
        switch (ch) {
            case 'a': opt.mode |= kShowSaslServ; break;
            case 'A': opt.mode |= kShowSaslClnt; break;
            case 'b': opt.mode |= kExpDsnTempl; break;
            case 'c': opt.config_dir = optarg; break;
            case 'C': opt.mode |= kParamClass; opt.param_classes = parse_param_class(optarg); break;
            case 'd': opt.mode |= kShowDefs; break;
            case 'e': opt.mode |= kEditConf; break;
            case 'f': opt.mode |= kFoldLine; break;
            case 'F': opt.mode |= kMasterFld; break;
            case '#': opt.mode |= kCommentOut; break;
            case 'h': opt.mode |= kHideName; break;
            case 'H': opt.mode |= kHideValue; break;
            case 'l': opt.mode |= kShowLocks; break;
            case 'm': opt.mode |= kShowMaps; break;
            case 'M': opt.mode |= kMasterEntry; break;
            case 'n': opt.mode |= kShowNondef; break;
            case 'o': opt.mode |= kMainOver; opt.overrides.emplace_back(optarg); break;
            case 'p': opt.mode |= kMainParam; break;
            case 'P': opt.mode |= kMasterParam; break;
            case 't': opt.mode |= kDumpDsnTempl; break;
            case 'T':
                if (opt.has(kShowTls)) log::fatal("At most one -T <mode> option may be specified");
                opt.mode |= kShowTls;
                opt.tls_arg = optarg;
                break;
            case 'x': opt.mode |= kShowEval; break;
            case 'X': opt.mode |= kEditExcl; break;
            case 'v': ++opt.verbose; break;
            default: usage(argv[0]);
        }
    }
    for (int i = optind; i < argc; ++i) opt.args.emplace_back(argv[i]);
    if (!(opt.mode & kMajorModes)) opt.mode |= kMainParam;
    constexpr unsigned kMainOrMaster = kMainParam | kMasterEntry | kMasterFld | kMasterParam;
    if ((opt.mode & kMainOrMaster) && !opt.args.empty() && opt.args[0].find('=') != std::string::npos)
        opt.mode |= kEditConf;
    check_combinations(opt.mode);
    if (opt.has(kEditConf) && opt.args.empty()) log::fatal("-e requires name=value argument");
    return opt;
}

}  // namespace postern::postconf
