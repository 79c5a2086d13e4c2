/*
 * status.h: the endpoints that tell the node's state: liveness, readiness,
 * role and metrics. Main thread only; each answers its request.
 */

void	status_health(struct http_request *r);	/* GET /health */
void	status_ready(struct http_request *r);	/* GET /ready */
void	status_role(struct http_request *r);	/* GET /role */
void	status_metrics(struct http_request *r);	/* GET /metrics */
