/* The core's `return` handler: a fixed status, body and headers from the
 * config, e.g. health checks and redirects. No module needed. */
#include <string.h>
#include <strings.h>
#include "http/request_impl.h"

int tt_return_handle(tt_req *q, const tt_return_conf *rc)
{
    tt_request *r = &q->pub;
    int has_type = 0;

    for (size_t i = 0; i < rc->nheaders; i++) {
        if (rc->headers[i].name_len == 12 &&
            strncasecmp(rc->headers[i].name, "Content-Type", 12) == 0)
            has_type = 1;
    }
    if (has_type || rc->body_len == 0) {
        if (tt_resp_start(r, rc->status, rc->headers, rc->nheaders, (int64_t)rc->body_len) != 0)
            return TT_ERROR;
    } else {
        /* a body without a type is text, as most `return` bodies are */
        tt_header *h = tt_req_palloc(r, (rc->nheaders + 1) * sizeof(*h));
        if (rc->nheaders)
            memcpy(h, rc->headers, rc->nheaders * sizeof(*h));
        h[rc->nheaders] = (tt_header){ "Content-Type", 12, "text/plain; charset=utf-8", 25 };
        if (tt_resp_start(r, rc->status, h, rc->nheaders + 1, (int64_t)rc->body_len) != 0)
            return TT_ERROR;
    }
    if (rc->body_len > 0)
        tt_resp_write(r, rc->body, rc->body_len);
    return tt_resp_finish(r) == 0 ? TT_OK : TT_ERROR;
}
