// texthash:/path — a postmap(1)-format source file read into memory at open, so no .db
// is needed (Postfix's dict_thash). Warnings about the file are logged at open, with
// file and line, as Postfix logs them; a duplicate key follows the kDup* flags.
#include "util/base/file_io.h"
#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/table/table_memory.h"
#include "util/table/table_source.h"
#include "util/table/table_types.h"

namespace postern::table {

TableResult open_texthash_table(std::string_view spec, std::string_view name, unsigned flags) {
    const std::string path(name);
    if (path.empty())
        return make_error(strprintf("open dictionary: expecting \"type:name\" form instead of \"%.*s\"",
                                    static_cast<int>(spec.size()), spec.data()));
    if (!(flags & kReadOnly) || (flags & kCreate))
        return make_error(strprintf("texthash:%s map requires O_RDONLY access mode", path.c_str()));
    Result<std::string> text = read_file(path);
    if (!text) {
        // read_file says "open PATH: why"; Postfix says "open database PATH: why".
        std::string err = text.error();
        if (err.rfind("open ", 0) == 0) err.insert(5, "database ");
        return make_error(err);
    }

    auto table = std::make_unique<MemoryTable>(std::string(spec), flags);
    table->watch_file(path);
    LogicalLineReader reader(path);
    reader.feed(*text);
    reader.finish();
    for (const std::string& w : reader.take_warnings()) log::warn("%s", w.c_str());
    std::vector<std::string> warnings;
    LogicalLine line;
    while (reader.next(line)) {
        warnings.clear();
        std::optional<SourceEntry> entry = parse_texthash_line(line, path, flags & kUtf8, warnings);
        for (const std::string& w : warnings) log::warn("%s", w.c_str());
        if (!entry) continue;
        if (!table->contains(entry->key)) {
            table->put(entry->key, entry->value);
        } else if (flags & kDupIgnore) {
        } else if (flags & kDupReplace) {
            table->put(entry->key, entry->value);
        } else if (flags & kDupWarn) {
            log::warn("%s, line %d: duplicate entry: \"%s\"", path.c_str(), line.line, entry->key.c_str());
        } else {
            return make_error(strprintf("%s, line %d: duplicate entry: \"%s\"", path.c_str(), line.line,
                                        entry->key.c_str()));
        }
    }
    return std::unique_ptr<Table>(std::move(table));
}

}  // namespace postern::table
