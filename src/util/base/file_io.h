// Whole-file reads and crash-safe whole-file replacement.
#pragma once

#include <string>
#include <string_view>

#include "util/base/result.h"

namespace postern {

// Reads a whole file; the error names the path and errno text as Postfix does
// ("open /path: No such file or directory").
Result<std::string> read_file(const std::string& path);

// Writes `data` to a temporary file beside `path`, fsyncs it, renames it over `path`,
// and fsyncs the directory: readers see the old or the new file, never half of one.
Status replace_file_atomic(const std::string& path, std::string_view data, int mode = 0644);

// Directory part of a path ("." when there is none).
std::string dirname_of(std::string_view path);

}  // namespace postern
