"""GET /api/classes/{class_id}/reviews (public) and POST {rating, review}: a fan who attended reviews the class."""

from uuid import UUID

from lib import calls, classes
from lib.auth import CurrentUser
from lib.classes.models import ReviewIn, ReviewPosted, Reviews
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/classes/{class_id}/reviews")
def class_reviews(class_id: UUID, conn: DbConn) -> Reviews:
    """{reviews: [{id, rating, review, userName, userAvatar, createdAt}], stats: {averageRating, totalReviews,
    ratingDistribution}}."""
    return classes.class_reviews(conn, class_id, calls.utcnow())


@app.post("/api/classes/{class_id}/reviews", status_code=201)
def post_review(class_id: UUID, body: ReviewIn, user: CurrentUser, conn: DbConn) -> ReviewPosted:
    """{success, review, stats}; 403 NOT_ATTENDED, 409 ALREADY_REVIEWED."""
    return classes.review(conn, user, class_id, body, calls.utcnow())
