"""gridsvc demo: the generated demo street."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from gridsvc.cli.common import app, console, open_session

if TYPE_CHECKING:
    pass

demo_app = typer.Typer(help="Generated demo data.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")


# -- demo -----------------------------------------------------------------------------------
@demo_app.command("load")
def demo_load(
    seed: Annotated[int, typer.Option(help="random seed (same seed, same street)")] = 42,
    communities: Annotated[int, typer.Option(help="communities in the street")] = 3,
    street_code: Annotated[str, typer.Option(help="9-digit street code")] = "320102001",
) -> None:
    """Generate a demo street and load it."""
    from geodata.synth import SynthConfig, generate_street
    from gridsvc.services.demo import load_street

    with console.status("generating …"):
        street = generate_street(
            SynthConfig(
                seed=seed,
                communities=communities,
                street_code=street_code,
                district_code=street_code[:6],
            )
        )
    with open_session() as session:
        loaded = load_street(session, street, step=lambda s: console.print(f"loading {s} …"))
        session.commit()
    console.print(loaded)
