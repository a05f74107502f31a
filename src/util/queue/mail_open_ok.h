// Postfix's mail_open_ok(): may a queue file be acted on? Readers of the whole queue
// (postqueue's listing, postsuper) look only at regular files whose writer finished
// them (mode u=rwx); a file still being written, or a non-file, is left alone.
#pragma once

#include <sys/stat.h>

#include <string>

namespace postern::queue {

// lstat()s `path`: true for a complete regular file (st filled in). Warns about a
// non-file and about extra hard links, as Postfix does; a missing file is silent.
bool mail_open_ok(const std::string& path, struct stat& st);

}  // namespace postern::queue
