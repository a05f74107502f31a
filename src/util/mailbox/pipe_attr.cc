#include "util/mailbox/pipe_attr.h"

#include <cctype>
#include <cstdlib>

#include "util/address/address.h"
#include "util/base/strings.h"
#include "util/mailbox/mail_copy.h"

namespace postern::mailbox {

namespace {

// Per-recipient macros: an argument naming one is expanded once per recipient.
enum RcptMacro : unsigned {
    kRcpt = 1, kUser = 2, kExtension = 4, kMailbox = 8, kDomain = 16, kOrigRcpt = 32,
};

struct MacroName {
    const char* name;
    unsigned per_rcpt;
};
constexpr MacroName kMacros[] = {
    {"nexthop", 0},        {"recipient", kRcpt},        {"sender", 0},
    {"user", kUser},       {"extension", kExtension},   {"mailbox", kMailbox},
    {"domain", kDomain},   {"original_recipient", kOrigRcpt}, {"size", 0},
    {"queue_id", 0},       {"client_address", 0},       {"client_hostname", 0},
    {"client_port", 0},    {"client_protocol", 0},      {"client_helo", 0},
    {"sasl_method", 0},    {"sasl_username", 0},        {"sasl_sender", 0},
};

bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// One "$name", "${name}", "${name?text}", "${name:text}" or "$(name)" reference.
struct Ref {
    std::string name;
    char op = 0;  // '?' or ':' for the conditional forms
    std::string text;
    size_t end = 0;  // index after the reference
};

// Parses the reference that starts at s[i] == '$' (not "$$"); false when malformed.
bool parse_ref(std::string_view s, size_t i, Ref& ref) {
    size_t p = i + 1;
    if (p < s.size() && (s[p] == '{' || s[p] == '(')) {
        char close = s[p] == '{' ? '}' : ')';
        size_t start = ++p;
        while (p < s.size() && name_char(s[p])) ++p;
        ref.name = std::string(s.substr(start, p - start));
        if (p < s.size() && close == '}' && (s[p] == '?' || s[p] == ':')) {
            ref.op = s[p];
            size_t depth = 1, t = ++p;
            for (; p < s.size(); ++p) {
                if (s[p] == '{') ++depth;
                if (s[p] == '}' && --depth == 0) break;
            }
            ref.text = std::string(s.substr(t, p - t));
        }
        if (p >= s.size() || s[p] != close || ref.name.empty()) return false;
        ref.end = p + 1;
        return true;
    }
    size_t start = p;
    while (p < s.size() && name_char(s[p])) ++p;
    ref.name = std::string(s.substr(start, p - start));
    ref.end = p;
    return !ref.name.empty();
}

// Walks the macro references of one argument: the per-recipient kinds it names, or an
// error for a name pipe(8) does not know.
Result<unsigned> scan_refs(std::string_view arg) {
    unsigned kinds = 0;
    for (size_t i = 0; i < arg.size(); ++i) {
        if (arg[i] != '$') continue;
        if (i + 1 < arg.size() && arg[i + 1] == '$') {
            ++i;
            continue;
        }
        Ref ref;
        if (!parse_ref(arg, i, ref)) return make_error(strprintf("malformed macro in \"%s\"", std::string(arg).c_str()));
        const MacroName* m = nullptr;
        for (const auto& k : kMacros)
            if (ref.name == k.name) m = &k;
        if (!m) return make_error("unknown macro name: \"" + ref.name + "\"");
        kinds |= m->per_rcpt;
        if (auto inner = scan_refs(ref.text); !inner) return inner;
        else kinds |= *inner;
        i = ref.end - 1;
    }
    return kinds;
}

std::string expand_arg(std::string_view arg, const PipeMacros& macros) {
    std::string out;
    for (size_t i = 0; i < arg.size(); ++i) {
        if (arg[i] != '$') {
            out += arg[i];
            continue;
        }
        if (i + 1 < arg.size() && arg[i + 1] == '$') {
            out += '$', ++i;
            continue;
        }
        Ref ref;
        parse_ref(arg, i, ref);  // scan_refs() accepted it
        auto it = macros.find(ref.name);
        std::string value = it == macros.end() ? "" : it->second;
        if (ref.op == '?') out += value.empty() ? "" : expand_arg(ref.text, macros);
        else if (ref.op == ':') out += value.empty() ? expand_arg(ref.text, macros) : value;
        else out += value;
        i = ref.end - 1;
    }
    return out;
}

// Postfix's morph_recipient(): q quotes the local part, h folds the domain, u the
// local part (an address without '@' is folded whole when either is on).
std::string morph_recipient(const std::string& address, unsigned flags) {
    std::string buf = (flags & kPipeQuoteLocal) ? address::to_external(address) : address;
    size_t at = buf.rfind('@');
    unsigned fold = flags & (kPipeFoldUser | kPipeFoldHost);
    if (fold == kPipeFoldHost && at != std::string::npos) {
        buf = buf.substr(0, at + 1) + lowercase(buf.substr(at + 1));
    } else if (fold == kPipeFoldUser && at != std::string::npos) {
        buf = lowercase(buf.substr(0, at)) + buf.substr(at);
    } else if (fold) {
        buf = lowercase(buf);
    }
    return buf;
}

// Postfix's split_addr(): the local part before and after the first delimiter;
// postmaster, mailer-daemon and the like are never split.
std::pair<std::string, std::string> split_local(const std::string& local, std::string_view delimiters) {
    if (delimiters.empty() || iequals(local, "postmaster") || iequals(local, "mailer-daemon") ||
        iequals(local, "double-bounce"))
        return {local, ""};
    size_t cut = local.find_first_of(delimiters);
    if (cut == std::string::npos) return {local, ""};
    return {local.substr(0, cut), local.substr(cut + 1)};
}

}  // namespace

std::string unescape(std::string_view text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c != '\\' || i + 1 >= text.size()) {
            out += c;
            continue;
        }
        c = text[++i];
        switch (c) {
            case 'a': out += '\a'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'v': out += '\v'; break;
            default:
                if (c >= '0' && c <= '7') {
                    int value = 0, n = 0;
                    while (n < 3 && i < text.size() && text[i] >= '0' && text[i] <= '7')
                        value = value * 8 + (text[i++] - '0'), ++n;
                    --i;
                    out += static_cast<char>(value);
                } else {
                    out += c;
                }
        }
    }
    return out;
}

Result<PipeAttr> parse_pipe_attr(const std::vector<std::string>& args) {
    PipeAttr a;
    bool have_user = false;
    auto value_of = [](const std::string& arg, std::string_view name) -> const char* {
        return arg.size() >= name.size() && iequals(std::string_view(arg).substr(0, name.size()), name)
                   ? arg.c_str() + name.size() : nullptr;
    };
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (const char* v = value_of(arg, "flags=")) {
            for (const char* c = v; *c; ++c) {
                switch (*c) {
                    case 'B': a.flags |= kCopyBlank; break;
                    case 'D': a.flags |= kCopyDelivered; break;
                    case 'F': a.flags |= kCopyFrom; break;
                    case 'O': a.flags |= kCopyOrigRcpt; break;
                    case 'R': a.flags |= kCopyReturnPath; break;
                    case '.': a.flags |= kCopyDot; break;
                    case '>': a.flags |= kCopyQuote; break;
                    case 'h': a.flags |= kPipeFoldHost; break;
                    case 'q': a.flags |= kPipeQuoteLocal; break;
                    case 'u': a.flags |= kPipeFoldUser; break;
                    case 'X': a.flags |= kPipeFinal; break;
                    default: return make_error(strprintf("unknown flag: %c (ignored)", *c));
                }
            }
        } else if (const char* v = value_of(arg, "user=")) {
            std::string u = v;
            size_t colon = u.find(':');
            a.user = u.substr(0, colon);
            a.group = colon == std::string::npos ? "" : u.substr(colon + 1);
            have_user = true;
        } else if (const char* v = value_of(arg, "directory=")) {
            a.exec_dir = v;
        } else if (const char* v = value_of(arg, "chroot=")) {
            a.chroot_dir = v;
        } else if (const char* v = value_of(arg, "eol=")) {
            a.eol = unescape(v);
        } else if (const char* v = value_of(arg, "null_sender=")) {
            a.null_sender = v;
        } else if (const char* v = value_of(arg, "size=")) {
            char* end = nullptr;
            long n = std::strtol(v, &end, 10);
            if (!*v || *end || n < 0) return make_error(strprintf("get_service_attr: bad size= value: %s", v));
            a.size_limit = n;
        } else if (const char* v = value_of(arg, "argv=")) {
            a.command.push_back(v);
            a.command.insert(a.command.end(), args.begin() + static_cast<long>(i) + 1, args.end());
            break;
        } else {
            return make_error("unknown attribute name: " + arg);
        }
    }
    if (!have_user) return make_error("missing user= command-line attribute");
    if (a.command.empty() || a.command[0].empty()) return make_error("missing argv= command-line attribute");
    return a;
}

Result<std::vector<std::string>> expand_pipe_argv(const std::vector<std::string>& command,
                                                  PipeMacros macros,
                                                  const std::vector<PipeRecipient>& recipients,
                                                  unsigned flags, std::string_view delimiters) {
    std::vector<std::string> out;
    unsigned fold = flags & (kPipeFoldUser | kPipeFoldHost);
    for (const std::string& arg : command) {
        auto kinds = scan_refs(arg);
        if (!kinds) return make_error(kinds.error());
        if (*kinds == 0) {
            out.push_back(expand_arg(arg, macros));
            continue;
        }
        for (const PipeRecipient& r : recipients) {
            if (*kinds & kRcpt) macros["recipient"] = morph_recipient(r.address, flags);
            if (*kinds & kOrigRcpt) macros["original_recipient"] = morph_recipient(r.orig, flags);
            std::string folded = morph_recipient(r.address, fold);
            size_t at = folded.rfind('@');
            std::string local = folded.substr(0, at);
            auto [user, ext] = split_local(local, delimiters);
            if (*kinds & kUser) {
                if (user.empty()) continue;  // "+bboard@host": Cyrus's shared mailboxes
                macros["user"] = user;
            }
            if (*kinds & kExtension) macros["extension"] = ext;
            if (*kinds & kMailbox) macros["mailbox"] = local;
            if (*kinds & kDomain) macros["domain"] = at == std::string::npos ? "" : folded.substr(at + 1);
            out.push_back(expand_arg(arg, macros));
        }
    }
    return out;
}

}  // namespace postern::mailbox
