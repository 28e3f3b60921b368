/*
 * LD_PRELOAD shim for the SyncEvolution 2.0.0 HTTP client (see docs/sync.md, "Interop").
 *
 * SyncEvolution 2.0.0 passes C++ lambda objects through curl_easy_setopt()'s varargs for
 * CURLOPT_READFUNCTION and CURLOPT_WRITEFUNCTION; the compiled code never loads the callback,
 * so libcurl calls fread()/fwrite() on the transport agent and the client crashes before the
 * first byte is sent. This shim intercepts curl_easy_setopt() and installs plain C callbacks
 * that call the exported members SyncEvo::CurlTransportAgent::readData/writeData; the
 * READDATA/WRITEDATA stream pointer SyncEvolution sets is the agent itself.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>

/* Option numbers from curl/curl.h (CURLOPTTYPE_FUNCTIONPOINT + 11 / + 12). */
#define OPT_WRITEFUNCTION 20011
#define OPT_READFUNCTION 20012

typedef int CURLcode_t;
typedef CURLcode_t (*setopt_fn)(void *, int, ...);

/* size_t SyncEvo::CurlTransportAgent::readData(void *buffer, size_t size), Itanium ABI:
 * the object pointer is the first argument. */
extern size_t _ZN7SyncEvo18CurlTransportAgent8readDataEPvm(void *self, void *buf, size_t n);
extern size_t _ZN7SyncEvo18CurlTransportAgent9writeDataEPvm(void *self, void *buf, size_t n);

static size_t read_cb(char *buf, size_t size, size_t nitems, void *agent) {
    return _ZN7SyncEvo18CurlTransportAgent8readDataEPvm(agent, buf, size * nitems);
}

static size_t write_cb(char *buf, size_t size, size_t nitems, void *agent) {
    return _ZN7SyncEvo18CurlTransportAgent9writeDataEPvm(agent, buf, size * nitems);
}

CURLcode_t curl_easy_setopt(void *handle, int option, ...) {
    static setopt_fn real;
    va_list ap;
    void *arg;
    if (!real)
        real = (setopt_fn)dlsym(RTLD_NEXT, "curl_easy_setopt");
    va_start(ap, option);
    /* Every option argument (long, pointer, curl_off_t) is one 8-byte slot on x86-64/arm64. */
    arg = va_arg(ap, void *);
    va_end(ap);
    if (option == OPT_READFUNCTION)
        arg = (void *)read_cb;
    else if (option == OPT_WRITEFUNCTION)
        arg = (void *)write_cb;
    return real(handle, option, arg);
}
