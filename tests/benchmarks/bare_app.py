"""The bare page SecureShare is compared with: Flask, one Jinja page, one row read through Flask-SQLAlchemy.

gunicorn serves `tests.benchmarks.bare_app:app`; BARE_DATABASE_URL names its database (SQLite in the run's folder).
"""

import os

from flask import Flask, render_template
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Note(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(String(500))


app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["BARE_DATABASE_URL"]
db.init_app(app)

with app.app_context():
    db.create_all()
    if db.session.get(Note, 1) is None:
        db.session.add(Note(id=1, title="A note", body="One row, read on every request."))
        db.session.commit()


@app.get("/")
def note():
    """The one page: one row, rendered."""
    return render_template("bare.html", note=db.get_or_404(Note, 1))
