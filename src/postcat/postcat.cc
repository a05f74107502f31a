// postcat(1): show the records of Postern (and Postfix) queue files, with Postfix's
// output format: envelope records by name, message header and body text, and the
// "*** ... ***" section markers.
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include <cstdio>
#include <string>

#include "util/base/strings.h"
#include "util/base/unique_fd.h"
#include "util/config/config.h"
#include "util/log/log.h"
#include "util/queue/queue_id.h"
#include "util/queue/queue_layout.h"
#include "util/queue/record.h"

namespace postern::postcat {
namespace {

using queue::Record;
namespace rec = queue::rec;

enum Flags : unsigned {
    kEnv = 1, kHeader = 2, kBody = 4, kOffset = 8, kDecimal = 16, kQueue = 32, kRaw = 64,
};
constexpr unsigned kAllText = kHeader | kBody;
constexpr unsigned kAll = kEnv | kHeader | kBody;
// Record types that may start a queue file (Postfix's REC_TYPE_ENVELOPE).
constexpr std::string_view kEnvelopeTypes = "MCTFILSDROWVA>";

enum class State { Env, Header, Body };

struct Options {
    unsigned flags = 0;
    int verbose = 0;
    unsigned long start = 0;
    const char* config_dir = nullptr;
};

void out(std::string_view s) { fwrite(s.data(), 1, s.size(), stdout); }

std::string ascii_time(long when) {
    time_t t = when;
    char buf[64];
    struct tm tm;
    if (!localtime_r(&t, &tm) || !asctime_r(&tm, buf)) return "?\n";
    return buf;
}

// A header line starts with a field name (printable, no space or colon) and a colon,
// optionally after blanks, as Postfix's is_header().
bool is_header(std::string_view s) {
    size_t i = 0;
    while (i < s.size() && s[i] > 32 && s[i] < 127 && s[i] != ':') ++i;
    if (i == 0) return false;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    return i < s.size() && s[i] == ':';
}

void prefix(const Options& o, const Record& r) {
    if (o.flags & kOffset) out(strprintf("%9lu ", static_cast<unsigned long>(r.offset)));
    if (o.flags & kDecimal) out(strprintf("%3d ", r.type));
}

void marker(const Options& o, const Record& r, const char* text, const std::string& path) {
    prefix(o, r);
    out(strprintf("*** %s %s ***\n", text, path.c_str()));
}

void print_attr(std::string_view data, const std::string& path) {
    std::string_view name, value;
    size_t eq = data.find('=');
    if (eq != std::string_view::npos) {
        name = trim(data.substr(0, eq));
        value = trim(data.substr(eq + 1));
    }
    if (eq == std::string_view::npos || name.empty()) {
        fflush(stdout);
        log::warn("%s: malformed attribute: %s: %.100s", path.c_str(),
                  eq == std::string_view::npos ? "missing '=' after attribute name"
                                               : "missing attribute name",
                  std::string(data).c_str());
        return;
    }
    if (name == "create_time") {
        long when = atol(std::string(value).c_str());
        out("create_time: " + ascii_time(when));
    } else {
        out("named_attribute: " + std::string(name) + "=" + std::string(value) + "\n");
    }
}

// Prints one record that has no effect on the section state machine.
void print_plain(const Options& o, const Record& r, State state, char& prev_type) {
    prefix(o, r);
    std::string_view name = queue::record_type_name(r.type);
    switch (r.type) {
        case rec::kTime:
        case rec::kWarn:
            out(std::string(name) + ": " + ascii_time(atol(std::string(r.data).c_str())));
            break;
        case rec::kCont:
            if (state == State::Env) out(std::string(name) + ": ");
            else if (o.verbose) out("unterminated_text: ");
            out(r.data);
            if (state == State::Env || o.verbose || (o.flags & kOffset)) {
                out("\n");
                prev_type = 0;
                return;
            }
            break;
        case rec::kNorm:
            if (o.verbose) out("regular_text: ");
            out(r.data);
            out("\n");
            break;
        case rec::kAttr: return print_attr(r.data, "");
        default: out(std::string(name) + ": " + std::string(r.data) + "\n"); break;
    }
    prev_type = r.type;
}

struct Walk {
    const Options& o;
    const std::string& path;
    State state = State::Env;
    bool do_print = false;
    char prev_type = 0;
};

// Handles the records that move between envelope, header, body and extracted sections.
// Returns false when the walk ends.
bool section_record(Walk& w, const Record& r, bool& handled) {
    const Options& o = w.o;
    handled = true;
    bool text = r.type == rec::kNorm || r.type == rec::kCont;
    if (text) {
        handled = false;
        if (w.state == State::Header && (o.flags & kAllText) && w.prev_type != rec::kCont &&
            !(is_header(r.data) || (!r.data.empty() && (r.data[0] == ' ' || r.data[0] == '\t')))) {
            w.state = State::Body;
            w.do_print = o.flags & kBody;
            if (!w.do_print && !(o.flags & kEnv)) return false;
        }
    } else if (r.type == rec::kMesg) {
        if (w.state != State::Env) log::warn("%s: out-of-order message content marker", w.path.c_str());
        if (o.flags & kEnv) marker(o, r, "MESSAGE CONTENTS", w.path);
        w.state = State::Header;
        w.do_print = o.flags & kHeader;
    } else if (r.type == rec::kXtra) {
        if (w.state == State::Env) log::warn("%s: out-of-order extracted segment marker", w.path.c_str());
        if (w.do_print && w.prev_type == rec::kCont) out("\n");
        if (o.flags & kEnv) marker(o, r, "HEADER EXTRACTED", w.path);
        w.state = State::Env;
        w.do_print = o.flags & kEnv;
        if (!w.do_print) return false;
    } else if (r.type == rec::kEnd) {
        if (w.state != State::Env) log::warn("%s: out-of-order message end marker", w.path.c_str());
        if (o.flags & kEnv) marker(o, r, "MESSAGE FILE END", w.path);
        return (o.flags & kRaw) != 0;
    } else if (r.type == rec::kSize) {
        if (w.do_print) {
            prefix(o, r);
            out("message_size: " + std::string(r.data) + "\n");
        }
    } else {
        handled = false;
    }
    return true;
}

void postcat(int fd, const std::string& path, const Options& o) {
    queue::RecordReader reader(queue::fd_source(fd), o.start);
    char first = 0;
    if (o.start == 0 && pread(fd, &first, 1, 0) == 1 && kEnvelopeTypes.find(first) == std::string_view::npos) {
        log::warn("%s: input is not a valid queue file", path.c_str());
        return;
    }
    if (o.start == 0 && (o.flags & kEnv)) out("*** ENVELOPE RECORDS " + path + " ***\n");
    Walk w{o, path};
    w.do_print = o.flags & kEnv;
    for (;;) {
        auto r = reader.next();
        if (!r) {
            fflush(stdout);
            log::warn("%s: %s", path.c_str(), r.error().c_str());
            log::fatal("record read error");
        }
        if (!*r) break;
        const Record& record = **r;
        bool handled = false;
        if (!section_record(w, record, handled)) break;
        if (handled || !w.do_print) continue;
        if (record.type == rec::kAttr) {
            prefix(o, record);
            print_attr(record.data, path);
            w.prev_type = record.type;
        } else {
            print_plain(o, record, w.state, w.prev_type);
        }
    }
    fflush(stdout);
}

// A pipe or terminal: copy it to memory so the reader can address it by offset.
std::string slurp(int fd) {
    std::string data;
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) data.append(buf, static_cast<size_t>(n));
    return data;
}

void postcat_stream(int fd, const std::string& path, const Options& o) {
    if (lseek(fd, 0, SEEK_CUR) >= 0) return postcat(fd, path, o);
    std::string data = slurp(fd);
    char tmpl[] = "/tmp/postcat.XXXXXX";
    UniqueFd tmp(mkstemp(tmpl));
    if (!tmp) log::fatal("create temporary file: %s", strerror(errno));
    unlink(tmpl);
    if (write(tmp.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size()))
        log::fatal("write temporary file: %s", strerror(errno));
    postcat(tmp.get(), path, o);
}

[[noreturn]] void usage(const char* prog) {
    log::fatal("usage: %s [-b (body text)] [-c config_dir] [-d (decimal record type)] [-e "
               "(envelope records)] [-h (header text)] [-q (access queue)] [-v] [file(s)...]",
               prog);
}

Options parse_args(int argc, char** argv) {
    Options o;
    int ch;
    while ((ch = getopt(argc, argv, "bc:dehoqrs:v")) > 0) {
        switch (ch) {
            case 'b': o.flags |= kBody; break;
            case 'c': o.config_dir = optarg; break;
            case 'd': o.flags |= kDecimal; break;
            case 'e': o.flags |= kEnv; break;
            case 'h': o.flags |= kHeader; break;
            case 'o': o.flags |= kOffset; break;
            case 'q': o.flags |= kQueue; break;
            case 'r': o.flags |= kRaw; break;
            case 's': {
                long v = -1;
                std::string_view arg = optarg;
                if (arg.find_first_not_of("0123456789") != std::string_view::npos ||
                    !parse_long(arg, v) || v < 0)
                    log::fatal("bad offset: %s", optarg);
                o.start = static_cast<unsigned long>(v);
                break;
            }
            case 'v': ++o.verbose; break;
            default: usage(argv[0]);
        }
    }
    if ((o.flags & kAll) == 0) o.flags |= kAll;
    return o;
}

void cat_queue_ids(const config::Config& cfg, int argc, char** argv, const Options& o) {
    auto layout = queue::Layout::from_config(cfg);
    if (!layout) log::fatal("%s", layout.error().c_str());
    if (chdir(layout->queue_directory().c_str()) != 0)
        log::fatal("chdir %s: %s", layout->queue_directory().c_str(), strerror(errno));
    for (int i = optind; i < argc; ++i) {
        if (!queue::id_ok(argv[i])) log::fatal("bad mail queue ID: %s", argv[i]);
        UniqueFd fd;
        std::string rel;
        for (std::string_view q : queue::kMessageQueues) {
            rel = layout->relative_path(q, argv[i]);
            fd.reset(open(rel.c_str(), O_RDONLY | O_CLOEXEC));
            if (fd) break;
        }
        if (!fd) log::fatal("open queue file %s: %s", argv[i], strerror(errno));
        postcat(fd.get(), rel, o);
    }
}

int run(int argc, char** argv) {
    log::init(argv[0]);
    Options o = parse_args(argc, argv);
    log::set_verbose(o.verbose);
    auto cfg = config::Config::load(config::config_directory(o.config_dir), "postcat");
    if (!cfg) log::fatal("%s", cfg.error().c_str());
    if (optind == argc) {
        postcat_stream(0, "stdin", o);
    } else if (o.flags & kQueue) {
        cat_queue_ids(*cfg, argc, argv, o);
    } else {
        for (int i = optind; i < argc; ++i) {
            UniqueFd fd(open(argv[i], O_RDONLY | O_CLOEXEC));
            if (!fd) log::fatal("open %s: %s", argv[i], strerror(errno));
            postcat(fd.get(), argv[i], o);
        }
    }
    return 0;
}

}  // namespace
}  // namespace postern::postcat

int main(int argc, char** argv) { return postern::postcat::run(argc, argv); }
