// Loads the plugin given as argv[1] and runs its saga in the folder argv[2].
#include <dlfcn.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  void* plugin = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (plugin == nullptr) {
    std::fprintf(stderr, "dlopen: %s\n", dlerror());
    return 3;
  }
  auto run = reinterpret_cast<int (*)(const char*)>(dlsym(plugin, "saga_plugin_run"));
  if (run == nullptr) return 4;
  const int rc = run(argv[2]);
  std::printf(rc == 0 ? "compensated\n" : "failed: %d\n", rc);
  return rc;
}
