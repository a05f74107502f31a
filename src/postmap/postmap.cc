// postmap(1): create, query or update lookup tables.
//   postmap [-bfhimnNoprsuUvw] [-c config_dir] [-d key] [-q key] [map_type:]file...
// Options, output, messages and exit codes follow Postfix 3.7's postmap.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "util/config/config.h"
#include "util/log/log.h"
#include "util/log/log_config.h"
#include "util/table/map_command.h"

namespace postern::postmap {
namespace {

struct Options {
    table::MapCommand cmd;
    const char* config_dir = nullptr;
    const char* query = nullptr;
    const char* delkey = nullptr;
    bool sequence = false;
    bool incremental = false;
    bool mime = false;
    bool utf8_off = false;  // -u
    bool force_utf8 = false;  // -U
    table::QueryKeyMode keys;
    int verbose = 0;
    std::vector<std::string> maps;
};

[[noreturn]] void usage(const char* prog) {
    log::fatal("usage: %s [-bfFhimnNoprsuUvw] [-c config_dir] [-d key] [-q key] [map_type:]file...", prog);
}

Options parse_options(int argc, char** argv) {
    using namespace table;
    Options o;
    if (std::getenv("MAIL_VERBOSE")) o.verbose = 1;
    int ch;
    while ((ch = getopt(argc, argv, "bc:d:fFhimnNopq:rsuUvw")) > 0) {
        switch (ch) {
            case 'N': o.cmd.flags = (o.cmd.flags | kTryNul1) & ~kTryNul0; break;
            case 'b': o.keys.body = true; break;
            case 'c': o.config_dir = optarg; break;
            case 'd':
                if (o.sequence || o.query || o.delkey) log::fatal("specify only one of -s -q or -d");
                o.delkey = optarg;
                break;
            case 'f': o.cmd.flags &= ~kFoldFix; break;
            case 'F': log::fatal("the -F option (base64-encoded file values) is not supported");
            case 'h': o.keys.headers = true; break;
            case 'i': o.incremental = true; break;
            case 'm': o.mime = true; break;
            case 'n': o.cmd.flags = (o.cmd.flags | kTryNul0) & ~kTryNul1; break;
            case 'o': o.cmd.as_owner = false; break;
            case 'p': o.cmd.save_permissions = false; break;
            case 'q':
                if (o.sequence || o.query || o.delkey) log::fatal("specify only one of -s -q or -d");
                o.query = optarg;
                break;
            case 'r': o.cmd.flags = (o.cmd.flags & ~(kDupWarn | kDupIgnore)) | kDupReplace; break;
            case 's':
                if (o.query || o.delkey) log::fatal("specify only one of -s or -q or -d");
                o.sequence = true;
                break;
            case 'u': o.utf8_off = true; break;
            case 'U': o.force_utf8 = true; break;
            case 'v': ++o.verbose; break;
            case 'w': o.cmd.flags = (o.cmd.flags & ~(kDupWarn | kDupReplace)) | kDupIgnore; break;
            default: usage(argv[0]);
        }
    }
    for (int i = optind; i < argc; ++i) o.maps.emplace_back(argv[i]);
    return o;
}

void apply_config(Options& o) {
    auto config = config::Config::load(config::config_directory(o.config_dir), "postmap");
    if (!config) log::fatal("%s", config.error().c_str());
    log::configure_from(*config);
    log::set_verbose(o.verbose);
    std::string type = config->get("default_database_type");
    if (!type.empty()) o.cmd.default_type = type;
    bool hb_only = o.keys.headers || o.keys.body;
    if (table::smtputf8_enabled(*config) && !o.utf8_off && (!hb_only || o.force_utf8)) o.cmd.flags |= table::kUtf8;
}

int run(Options& o, const char* prog) {
    const bool any_key_mode = o.keys.headers || o.keys.body || o.mime;
    if ((o.query == nullptr || std::strcmp(o.query, "-") != 0) && any_key_mode)
        log::fatal("specify -b -h or -m only with \"-q -\"");
    if (o.mime && !o.keys.headers && !o.keys.body) log::warn("ignoring -m option without -b or -h");
    table::LookupModes modes{o.query, o.delkey, o.sequence, o.keys};
    if (int rc = table::run_lookup_mode(o.cmd, o.maps, modes, [prog] { usage(prog); }); rc >= 0) return rc;
    if (o.maps.empty()) usage(prog);
    const bool utf8 = (o.cmd.flags & table::kUtf8) != 0;
    auto parse = [utf8](const table::LogicalLine& line, std::string_view path, std::vector<std::string>& warnings) {
        return table::parse_postmap_line(line, path, utf8, warnings);
    };
    for (const std::string& m : o.maps)
        table::build_map(o.cmd, table::full_spec(m, o.cmd.default_type), o.incremental, parse, nullptr);
    return 0;
}

}  // namespace
}  // namespace postern::postmap

int main(int argc, char** argv) {
    using namespace postern;
    umask(022);
    if (const char* slash = std::strrchr(argv[0], '/'); slash && slash[1]) argv[0] = const_cast<char*>(slash + 1);
    log::init(argv[0]);
    postmap::Options opt = postmap::parse_options(argc, argv);
    postmap::apply_config(opt);
    return postmap::run(opt, argv[0]);
}
